@echo off
rem sanet-style installer for Windows (double-click or cmd): runs install.ps1 with the same arguments.
powershell -NoProfile -ExecutionPolicy Bypass -File "%~dp0install.ps1" %*
exit /b %ERRORLEVEL%
