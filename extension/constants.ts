// Identifiers that package.json uses too, so a change here needs the same change there.

export const EXTENSION_NAME = "bgrun";
export const SETTINGS_SECTION = "bgrun";
export const LOG_SCHEME = "bgrun-log";
export const STATUS_BAR_ID = "bgrun";
export const JOBS_VIEW_ID = "bgrun.jobs";
export const PYTHON_EXTENSION_ID = "ms-python.python";
export const HISTORY_KEY = "bgrun.commandHistory";
export const FOLLOWING_CONTEXT_KEY = "bgrun.following";

export const Commands = {
  run: "bgrun.run",
  runCurrentFile: "bgrun.runCurrentFile",
  showJobs: "bgrun.showJobs",
  stopJob: "bgrun.stopJob",
  rerunJob: "bgrun.rerunJob",
  removeJob: "bgrun.removeJob",
  copyCommand: "bgrun.copyCommand",
  openLog: "bgrun.openLog",
  openRawLog: "bgrun.openRawLog",
  openLogsFolder: "bgrun.openLogsFolder",
  check: "bgrun.check",
  restart: "bgrun.restart",
  toggleFollow: "bgrun.toggleFollow",
  setupEnvironment: "bgrun.setupEnvironment",
  showBackendLog: "bgrun.showBackendLog",
  refreshJobs: "bgrun.refreshJobs",
} as const;

/** Titles as the command palette shows them, for messages that tell the user what to run. */
export const CommandTitles = {
  run: "bgrun: Run in Background",
  openRawLog: "bgrun: Open Log File (raw)",
  restart: "bgrun: Restart Backend",
  setupEnvironment: "bgrun: Set Up Private Python Environment",
  showBackendLog: "bgrun: Show Backend Log",
  check: "bgrun: Check Log Consistency",
} as const;

/**
 * Settings the server reads (camelCase keys of section `bgrun`). Only values the user set are
 * sent: a contributed default would otherwise override BGRUN_* variables and bgrun.toml, which
 * rank below editor settings in the engine.
 */
export const SERVER_SETTINGS = [
  "delay",
  "logRoot",
  "category",
  "categoryRules",
  "retries",
  "backoff",
  "stopGrace",
  "killLeftovers",
  "checkInterval",
  "envFile",
  "environment",
  "backend",
  "slurmOptions",
] as const;
