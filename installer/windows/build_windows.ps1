# Build FaceGuard for Windows: the one-folder bundle (dist\FaceGuard) and, when Inno Setup 6
# is installed, the installer dist\FaceGuard-<version>-setup.exe.
#   powershell -ExecutionPolicy Bypass -File installer\windows\build_windows.ps1 [-Release]
# Needs Python 3.11+ (py launcher) and, for the installer, Inno Setup 6.3+ (ISCC.exe).
param([switch]$Release)
$ErrorActionPreference = "Stop"
$Root = Resolve-Path (Join-Path $PSScriptRoot "..\..")
Set-Location $Root
$Venv = Join-Path $Root "build\dist-venv"
$Work = Join-Path $Root "build\pyinstaller"
New-Item -ItemType Directory -Force -Path $Work | Out-Null

# A build venv of its own: FaceGuard's runtime dependencies and PyInstaller, nothing else.
if (-not (Test-Path "$Venv\Scripts\python.exe")) { py -3 -m venv $Venv }
$Python = "$Venv\Scripts\python.exe"
& $Python installer\bundle_config.py requirements | Set-Content -Encoding ascii "$Work\requirements-dist.txt"
& $Python -m pip install --quiet --disable-pip-version-check -r "$Work\requirements-dist.txt"
if ($LASTEXITCODE -ne 0) { throw "pip install failed" }

$env:FACEGUARD_RELEASE = if ($Release) { "1" } else { "0" }
& $Python -m PyInstaller --noconfirm --clean --log-level WARN --distpath dist --workpath $Work installer\faceguard.spec
if ($LASTEXITCODE -ne 0) { throw "PyInstaller failed" }

& $Python installer\bundle_config.py verify dist\FaceGuard
if ($LASTEXITCODE -ne 0) { throw "the bundle is incomplete" }
& dist\FaceGuard\faceguard-cli.exe --self-test
if ($LASTEXITCODE -ne 0) { Write-Warning "self-test failed (see above)" }

$Iscc = @("${env:ProgramFiles(x86)}\Inno Setup 6\ISCC.exe", "$env:ProgramFiles\Inno Setup 6\ISCC.exe",
          "$env:LOCALAPPDATA\Programs\Inno Setup 6\ISCC.exe") | Where-Object { Test-Path $_ } | Select-Object -First 1
if ($Iscc) {
    & $Iscc installer\windows\faceguard.iss
    if ($LASTEXITCODE -ne 0) { throw "Inno Setup failed" }
} else {
    Write-Warning "Inno Setup 6 not found: dist\FaceGuard is built, the setup program is not"
}
