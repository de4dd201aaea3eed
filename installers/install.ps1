# sanet-style installer for Windows: runs installers\install.py with a Python >= 3.10.
#   powershell -ExecutionPolicy Bypass -File installers\install.ps1 [--torch cpu|cuda|existing] [--autostart] [--dry-run] [--uninstall] ...
# Pick the interpreter with $env:PYTHON = "C:\path\to\python.exe".
# Continue: Windows PowerShell 5.1 turns a native command's stderr into a terminating error under "Stop".
$ErrorActionPreference = "Continue"
$installer = Join-Path $PSScriptRoot "install.py"
$candidates = @()
if ($env:PYTHON) { $candidates += ,@($env:PYTHON) }
$candidates += ,@("py", "-3")
$candidates += ,@("python")
foreach ($cand in $candidates) {
    $exe = $cand[0]
    $pre = @($cand | Select-Object -Skip 1)
    if (-not (Get-Command $exe -ErrorAction SilentlyContinue)) { continue }
    & $exe @pre -c "import sys, venv; sys.exit(0 if sys.version_info >= (3, 10) else 1)" 2>$null
    if ($LASTEXITCODE -ne 0) { continue }
    & $exe @pre $installer @args
    exit $LASTEXITCODE
}
Write-Error "sanet-install: no Python >= 3.10 found (tried PYTHON, py -3, python). Install it from python.org, then run this again."
exit 1
