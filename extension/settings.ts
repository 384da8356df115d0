// The bgrun settings: those the server reads through workspace/configuration, and those only the extension uses.

import * as fs from "node:fs";
import * as vscode from "vscode";
import { SERVER_SETTINGS } from "./constants";
import { NotificationMode } from "./jobFormat";
import { expandPath } from "./python";
import { getConfiguration, getWorkspaceFolders } from "./vscodeapi";

const PATH_SETTINGS = new Set<string>(["logRoot", "envFile", "environment"]);


export interface ExtensionSettings {
  python: string;
  askCategory: boolean;
  followLogs: boolean;
  notifications: NotificationMode;
  /** Limit in bytes, from the setting in MiB. */
  maxRenderedLogBytes: number;
  defaultCategory: string;
}

const MEBIBYTE = 1024 * 1024;

function folderPathOf(scope: vscode.Uri | undefined): string | undefined {
  const folder = scope ? vscode.workspace.getWorkspaceFolder(scope) : getWorkspaceFolders()[0];
  return folder?.uri.scheme === "file" ? folder.uri.fsPath : undefined;
}

/** Returns the value the user set at the most specific level, or undefined when only the default applies. */
function explicitValue<T>(config: vscode.WorkspaceConfiguration, key: string): T | undefined {
  const inspected = config.inspect<T>(key);
  if (inspected === undefined) {
    return undefined;
  }
  return inspected.workspaceFolderValue ?? inspected.workspaceValue ?? inspected.globalValue;
}

/** Returns the `bgrun` settings object for the server: explicit values only, paths expanded. */
export function serverSettings(scope: vscode.Uri | undefined): Record<string, unknown> {
  const config = getConfiguration(scope);
  const folder = folderPathOf(scope);
  const settings: Record<string, unknown> = {};
  for (const key of SERVER_SETTINGS) {
    let value = explicitValue<unknown>(config, key);
    if (value === undefined || value === "" || (Array.isArray(value) && value.length === 0)) {
      continue;
    }
    if (PATH_SETTINGS.has(key) && typeof value === "string") {
      value = expandPath(value, folder);
    }
    settings[key] = value;
  }
  return settings;
}

export function extensionSettings(scope?: vscode.Uri): ExtensionSettings {
  const config = getConfiguration(scope);
  const sizeMiB = config.get<number>("maxRenderedLogSize", 5);
  return {
    python: expandPath(config.get<string>("python", ""), folderPathOf(scope)),
    askCategory: config.get<boolean>("askCategory", true),
    followLogs: config.get<boolean>("followLogs", true),
    notifications: config.get<NotificationMode>("notifications", "always"),
    maxRenderedLogBytes: Math.max(0.1, Number.isFinite(sizeMiB) ? sizeMiB : 5) * MEBIBYTE,
    defaultCategory: config.get<string>("category", ""),
  };
}

/**
 * Returns the env file for a job started in `folder`: bgrun.envFile, else the Python extension's
 * python.envFile when that file exists, else undefined.
 */
export function envFileFor(folder: vscode.WorkspaceFolder | undefined): string | undefined {
  const folderPath = folder?.uri.scheme === "file" ? folder.uri.fsPath : undefined;
  const own = getConfiguration(folder?.uri).get<string>("envFile", "");
  if (own.trim() !== "") {
    return expandPath(own, folderPath);
  }
  const pythonEnvFile = vscode.workspace.getConfiguration("python", folder?.uri).get<string>("envFile", "");
  if (pythonEnvFile.trim() === "" || folderPath === undefined) {
    return undefined;
  }
  const candidate = expandPath(pythonEnvFile, folderPath);
  return !candidate.includes("${") && fs.existsSync(candidate) ? candidate : undefined;
}

/**
 * Returns the environment prefix for a job: the bgrun.environment setting, expanded, else the
 * environment of the Python extension's selected interpreter, else undefined.
 */
export function environmentFor(folder: vscode.WorkspaceFolder | undefined, pythonEnvironment: string | undefined): string | undefined {
  const own = getConfiguration(folder?.uri).get<string>("environment", "");
  if (own.trim() !== "") {
    return expandPath(own, folder?.uri.scheme === "file" ? folder.uri.fsPath : undefined);
  }
  return pythonEnvironment;
}

/** Returns true when a change needs a new backend process. */
export function needsRestart(event: vscode.ConfigurationChangeEvent): boolean {
  return event.affectsConfiguration("bgrun.python");
}
