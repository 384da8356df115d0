// Helpers for end-to-end tests of VS Code extensions in code-server.
// tests/e2e/README.md describes each one.
export {
  DEFAULT_SETTINGS,
  codeServerBin,
  findFreePort,
  installExtension,
  listProcessGroup,
  startCodeServer,
  stopProcessGroup,
} from './code-server.mjs';
export { withWorkbench } from './session.mjs';
export { packVsix } from './vsix.mjs';
export { waitForFile, waitUntil } from './wait.mjs';
export {
  ARTIFACTS_DIR,
  COMMAND_TIMEOUT_MS,
  UI_TIMEOUT_MS,
  REPO_ROOT,
  answerInputBox,
  findEditorTab,
  openWorkbench,
  pickQuickPickItem,
  readEditorText,
  readStatusBar,
  runCommand,
  screenshot,
  waitForNotification,
  waitForStatusBarText,
} from './workbench.mjs';
