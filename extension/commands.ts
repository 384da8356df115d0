// Registration of every bgrun command. Each handler is short: the work is in the module of its concern.

import * as fs from "node:fs";
import * as path from "node:path";
import * as vscode from "vscode";
import { CommandTitles, Commands } from "./constants";
import { JobActions, logPathFromArgument } from "./jobActions";
import { showJobList } from "./jobList";
import { JobCache } from "./jobs";
import { traceInfo } from "./logging";
import { LogViewProvider, logPathOf } from "./logView";
import { CheckResult, Job, Methods, Preview, isActive } from "./protocol";
import { RunArguments, RunFlow } from "./runCommand";
import { Backend } from "./server";
import { registerCommand, requireTrust } from "./vscodeapi";

export interface CommandDependencies {
  backend: Backend;
  jobs: JobCache;
  actions: JobActions;
  runFlow: RunFlow;
  logView: LogViewProvider;
  output: vscode.LogOutputChannel;
}

function describeCheck(result: CheckResult): string {
  if (result.reports.length === 0) {
    return "bgrun: no log root has a job store yet, so there is nothing to check.";
  }
  const parts = result.reports.map(({ logRoot, report }) => {
    if (report.consistent) {
      return `${logRoot}: consistent (${report.jobs} jobs, ${report.log_files} logs)`;
    }
    const kinds = Object.entries(report.counts)
      .filter(([, count]) => count > 0)
      .map(([kind, count]) => `${count} ${kind}`)
      .join(", ");
    return `${logRoot}: ${report.drifts.length} drift(s) (${kinds})${report.repair ? `, ${report.repaired} repaired` : ""}`;
  });
  return `bgrun check: ${parts.join("; ")}.`;
}

async function checkConsistency(deps: CommandDependencies): Promise<CheckResult | undefined> {
  if (!requireTrust(CommandTitles.check)) {
    return undefined;
  }
  const result = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: "bgrun: checking the job store and the logs" },
    () => deps.backend.check(false),
  );
  traceInfo(describeCheck(result));
  const reportPaths = result.reports.map((item) => item.report.report_path).filter((item): item is string => !!item);
  const openReport = "Open Report";
  const actions = reportPaths.length > 0 ? [openReport] : [];
  if (result.consistent) {
    const choice = await vscode.window.showInformationMessage(describeCheck(result), ...actions);
    if (choice === openReport) {
      await vscode.window.showTextDocument(vscode.Uri.file(reportPaths[0]));
    }
    return result;
  }
  const repair = "Repair";
  const choice = await vscode.window.showWarningMessage(describeCheck(result), repair, ...actions);
  if (choice === openReport) {
    await vscode.window.showTextDocument(vscode.Uri.file(reportPaths[0]));
  } else if (choice === repair) {
    const repaired = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: "bgrun: repairing the job store" },
      () => deps.backend.check(true),
    );
    traceInfo(describeCheck(repaired));
    void vscode.window.showInformationMessage(describeCheck(repaired));
    await deps.backend.refreshJobs();
    return repaired;
  }
  return result;
}

async function openLogsFolder(deps: CommandDependencies): Promise<void> {
  if (!requireTrust("bgrun: Open Logs Folder")) {
    return;
  }
  const folder = vscode.workspace.workspaceFolders?.[0];
  const preview = await deps.backend.request<Preview>(Methods.preview, { command: "true", cwd: folder?.uri.fsPath });
  const logRoot = preview.log_root;
  if (!fs.existsSync(logRoot)) {
    void vscode.window.showInformationMessage(`bgrun: the logs folder ${logRoot} does not exist yet; the first job creates it.`);
    return;
  }
  const uri = vscode.Uri.file(logRoot);
  if (vscode.workspace.getWorkspaceFolder(uri) !== undefined) {
    await vscode.commands.executeCommand("revealInExplorer", uri);
    return;
  }
  if (vscode.env.remoteName === undefined) {
    await vscode.commands.executeCommand("revealFileInOS", uri);
    return;
  }
  const copy = "Copy Path";
  const choice = await vscode.window.showInformationMessage(`bgrun: the logs folder is ${logRoot}, outside the workspace.`, copy);
  if (choice === copy) {
    await vscode.env.clipboard.writeText(logRoot);
  }
}

function currentLogPath(argument: unknown, jobs: JobCache): string | undefined {
  const fromUri = logPathFromArgument(argument);
  if (fromUri !== undefined) {
    return fromUri;
  }
  if (argument !== undefined) {
    return undefined;
  }
  const uri = vscode.window.activeTextEditor?.document.uri;
  if (uri?.scheme === "bgrun-log" || (uri?.scheme === "file" && path.extname(uri.fsPath) === ".log")) {
    const logPath = logPathOf(uri);
    return jobs.findByLog(logPath) !== undefined || uri.scheme === "bgrun-log" ? logPath : undefined;
  }
  return undefined;
}

/** Returns the .log file of the active editor when a command got no argument, else undefined. */
function activeRawLog(argument: unknown): string | undefined {
  const uri = vscode.window.activeTextEditor?.document.uri;
  if (argument === undefined && uri?.scheme === "file" && path.extname(uri.fsPath) === ".log") {
    return uri.fsPath;
  }
  return undefined;
}

export function registerCommands(deps: CommandDependencies): vscode.Disposable[] {
  const { actions, jobs } = deps;
  const any = () => true;
  return [
    registerCommand(Commands.run, "Run in Background", (args?: RunArguments) => deps.runFlow.run(args ?? {})),
    registerCommand(Commands.runCurrentFile, "Run Current File in Background", (uri?: vscode.Uri) => deps.runFlow.runFile(uri)),
    registerCommand(Commands.showJobs, "Show Background Jobs", () => showJobList(jobs, actions)),
    registerCommand(Commands.stopJob, "Stop Job", async (argument?: unknown) => {
      const job = await actions.resolve(argument, (item) => isActive(item.state), "Choose a scheduled or running job to stop");
      return job && actions.stop(job);
    }),
    registerCommand(Commands.rerunJob, "Rerun Job", async (argument?: unknown) => {
      const job = await actions.resolve(argument, any, "Choose a job to run again");
      return job && actions.rerun(job);
    }),
    registerCommand(Commands.removeJob, "Remove Job", async (argument?: unknown) => {
      const job = await actions.resolve(argument, (item) => !isActive(item.state), "Choose a finished job to remove");
      return job && actions.remove(job);
    }),
    registerCommand(Commands.copyCommand, "Copy Command", async (argument?: unknown) => {
      const job = await actions.resolve(argument, any, "Choose a job to copy its command");
      return job && actions.copyCommand(job);
    }),
    registerCommand(Commands.openLog, "Open Log", async (argument?: unknown) => {
      const logPath = logPathFromArgument(argument) ?? activeRawLog(argument);
      if (logPath !== undefined) {
        await deps.logView.open(logPath);
        return;
      }
      const job = await actions.resolve(argument, any, "Choose a job to open its log");
      return job && actions.openLog(job);
    }),
    registerCommand(Commands.openRawLog, "Open Log File (raw)", async (argument?: unknown) => {
      const logPath = currentLogPath(argument, jobs);
      if (logPath !== undefined) {
        await vscode.window.showTextDocument(vscode.Uri.file(logPath), { preview: false });
        return;
      }
      const job: Job | undefined = await actions.resolve(argument, any, "Choose a job to open its raw log file");
      return job && actions.openRawLog(job);
    }),
    registerCommand(Commands.openLogsFolder, "Open Logs Folder", () => openLogsFolder(deps)),
    registerCommand(Commands.check, "Check Log Consistency", () => checkConsistency(deps)),
    registerCommand(Commands.restart, "Restart Backend", async () => {
      if (!requireTrust(CommandTitles.restart)) {
        return;
      }
      await deps.backend.restart();
      if (deps.backend.status === "running") {
        void vscode.window.setStatusBarMessage("bgrun: backend restarted", 3000);
      }
    }),
    registerCommand(Commands.setupEnvironment, "Set Up Private Python Environment", async () => {
      if (!requireTrust(CommandTitles.setupEnvironment)) {
        return;
      }
      await deps.backend.setUpAndRestart();
      if (deps.backend.status === "running") {
        void vscode.window.showInformationMessage(`bgrun: the backend runs in its private environment (${deps.backend.backendPython?.command}).`);
      }
    }),
    registerCommand(Commands.toggleFollow, "Toggle Log Following", () => {
      deps.logView.setFollowing(!deps.logView.following);
      void vscode.window.setStatusBarMessage(`bgrun: log following ${deps.logView.following ? "on" : "off"}`, 3000);
      return deps.logView.following;
    }),
    registerCommand(Commands.showBackendLog, "Show Backend Log", () => {
      deps.output.show(true);
      if (deps.backend.status === "stopped" && deps.backend.lastError) {
        const restart = "Restart Backend";
        void vscode.window.showErrorMessage(`bgrun: the backend is stopped. ${deps.backend.lastError}`, restart).then((choice) => {
          if (choice === restart) {
            void vscode.commands.executeCommand(Commands.restart);
          }
        });
      }
    }),
    registerCommand(Commands.refreshJobs, "Refresh Jobs", () => deps.backend.refreshJobs()),
  ];
}
