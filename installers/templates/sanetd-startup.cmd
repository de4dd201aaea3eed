@echo off
rem Written by the sanet-style installer (installers\install.py); "install.ps1 --uninstall" removes it.
rem Starts the sanetd daemon at login without a console window.
start "" "${pythonw}" -m sanetd
