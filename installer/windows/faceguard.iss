; Inno Setup 6 script for FaceGuard on Windows.
; Build the one-folder bundle first (installer\windows\build_windows.ps1 does both steps):
;   pyinstaller --noconfirm --distpath dist installer\faceguard.spec   -> dist\FaceGuard\
;   iscc installer\windows\faceguard.iss                               -> dist\FaceGuard-<version>-setup.exe
;
; Installs for the signed-in user (no administrator rights needed): sign in as the kiosk's
; account and run the setup there. The data folder (enrolled people, entry log, settings) is
; that user's %LOCALAPPDATA%\FaceGuard, platformdirs' user_data_dir("FaceGuard", appauthor=False)
; that FaceGuard itself uses; the uninstaller asks whether to keep it.
;
; AppName and AppVersion must match installer/bundle_config.py and pyproject.toml
; (tests/test_installer.py checks them).

#define AppName "FaceGuard"
#define AppVersion "0.1.0"
#define AppExeName "FaceGuard.exe"
#define CliExeName "faceguard-cli.exe"
#define DataFolder "{localappdata}\FaceGuard"
#define BundleDir "..\..\dist\FaceGuard"
#define IconFile "..\..\resources\icons\faceguard.ico"

[Setup]
AppId={{5A131D86-2E4C-4C68-A57A-D120CDE620E3}
AppName={#AppName}
AppVersion={#AppVersion}
AppVerName={#AppName} {#AppVersion}
AppPublisher={#AppName}
VersionInfoVersion={#AppVersion}
DefaultDirName={autopf}\{#AppName}
DefaultGroupName={#AppName}
DisableProgramGroupPage=yes
PrivilegesRequired=lowest
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
SetupIconFile={#IconFile}
UninstallDisplayIcon={app}\{#AppExeName}
UninstallDisplayName={#AppName}
OutputDir=..\..\dist
OutputBaseFilename={#AppName}-{#AppVersion}-setup
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern
CloseApplications=yes

[Tasks]
Name: "autostart"; Description: "Start {#AppName} full screen when this user signs in (kiosk PC)"; GroupDescription: "Kiosk:"; Flags: unchecked
Name: "desktopicon"; Description: "Create a desktop shortcut"; GroupDescription: "Shortcuts:"; Flags: unchecked

[Files]
Source: "{#BundleDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\{#AppName}\{#AppName}"; Filename: "{app}\{#AppExeName}"; WorkingDir: "{app}"
Name: "{autoprograms}\{#AppName}\{#AppName} (full screen)"; Filename: "{app}\{#AppExeName}"; Parameters: "--kiosk"; WorkingDir: "{app}"
Name: "{autoprograms}\{#AppName}\{#AppName} self-test"; Filename: "{cmd}"; Parameters: "/k """"{app}\{#CliExeName}"" --self-test"""; WorkingDir: "{app}"; IconFilename: "{app}\{#AppExeName}"
Name: "{autoprograms}\{#AppName}\Uninstall {#AppName}"; Filename: "{uninstallexe}"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\{#AppExeName}"; WorkingDir: "{app}"; Tasks: desktopicon
Name: "{autostartup}\{#AppName}"; Filename: "{app}\{#AppExeName}"; Parameters: "--kiosk"; WorkingDir: "{app}"; Tasks: autostart

[Run]
Filename: "{app}\{#AppExeName}"; Description: "Open {#AppName} now"; Flags: nowait postinstall skipifsilent

[Code]
{ Keep or remove the data folder: asked after the program files are gone. A silent
  uninstall keeps it unless /REMOVEDATA is on the uninstaller's command line. }
function RemoveDataRequested(): Boolean;
var
  I: Integer;
begin
  Result := False;
  for I := 1 to ParamCount do
    if CompareText(ParamStr(I), '/REMOVEDATA') = 0 then
      Result := True;
end;

procedure CurUninstallStepChanged(CurUninstallStep: TUninstallStep);
var
  DataDir: String;
  Remove: Boolean;
begin
  if CurUninstallStep <> usPostUninstall then
    Exit;
  DataDir := ExpandConstant('{#DataFolder}');
  if not DirExists(DataDir) then
    Exit;
  if UninstallSilent() then
    Remove := RemoveDataRequested()
  else
    Remove := MsgBox('Also delete the FaceGuard data folder?' + #13#10 + #13#10 +
      DataDir + #13#10 + #13#10 +
      'It holds the enrolled people, their face templates, the entry log and the settings. ' +
      'Choose No to keep it for a later installation.',
      mbConfirmation, MB_YESNO or MB_DEFBUTTON2) = IDYES;
  if Remove then
  begin
    if not DelTree(DataDir, True, True, True) then
      MsgBox('Some files in ' + DataDir + ' could not be deleted.', mbError, MB_OK);
  end;
end;
