// Thin wrappers over the VS Code API calls the modules share, so that each call site stays short
// and one place shows which parts of the API the extension uses.

import * as vscode from "vscode";
import { CommandTitles, SETTINGS_SECTION } from "./constants";
import { traceError, errorMessage } from "./logging";

export function getConfiguration(scope?: vscode.ConfigurationScope): vscode.WorkspaceConfiguration {
  return vscode.workspace.getConfiguration(SETTINGS_SECTION, scope);
}

export function getWorkspaceFolders(): readonly vscode.WorkspaceFolder[] {
  return vscode.workspace.workspaceFolders ?? [];
}

export function isTrusted(): boolean {
  return vscode.workspace.isTrusted;
}

/**
 * Registers a command whose errors are logged once and shown as an error notification, so no
 * handler needs its own try/catch for unexpected failures.
 */
export function registerCommand(id: string, title: string, handler: (...args: any[]) => unknown): vscode.Disposable {
  return vscode.commands.registerCommand(id, async (...args: unknown[]) => {
    try {
      return await handler(...args);
    } catch (error) {
      if (error instanceof vscode.CancellationError) {
        return undefined;
      }
      traceError(`${title} failed`, error);
      void showError(`${title} failed: ${errorMessage(error)}`);
      return undefined;
    }
  });
}

/** Shows an error notification whose "Show Backend Log" button opens the bgrun output channel. */
export async function showError(message: string, ...actions: string[]): Promise<string | undefined> {
  const showLog = "Show Backend Log";
  const choice = await vscode.window.showErrorMessage(message, ...actions, showLog);
  if (choice === showLog) {
    await vscode.commands.executeCommand("bgrun.showBackendLog");
    return undefined;
  }
  return choice;
}

const RESTRICTED_MESSAGE =
  "bgrun runs no job and starts no backend in Restricted Mode, because a job executes code from this workspace.";

/** Returns true in a trusted workspace. Otherwise it shows why `commandTitle` does nothing and returns false. */
export function requireTrust(commandTitle: string): boolean {
  if (vscode.workspace.isTrusted) {
    return true;
  }
  const manage = "Manage Workspace Trust";
  void vscode.window.showWarningMessage(`${RESTRICTED_MESSAGE} Trust this workspace to use "${commandTitle}".`, manage).then((choice) => {
    if (choice === manage) {
      void vscode.commands.executeCommand("workbench.trust.manage");
    }
  });
  return false;
}

export function openSettings(query: string): Thenable<unknown> {
  return vscode.commands.executeCommand("workbench.action.openSettings", query);
}

export { CommandTitles };
