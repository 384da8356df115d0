// Notifications when a job ends (per bgrun.notifications) and when the periodic check finds drift.

import * as vscode from "vscode";
import { Commands } from "./constants";
import { endMessage, shouldNotify } from "./jobFormat";
import { JobCache } from "./jobs";
import { traceInfo } from "./logging";
import { DriftFound, Job } from "./protocol";
import { extensionSettings } from "./settings";

async function notifyEnded(job: Job): Promise<void> {
  traceInfo(`Job ${job.id} ended: ${job.state}`);
  if (!shouldNotify(extensionSettings().notifications, job)) {
    return;
  }
  const openLog = "Open Log";
  const rerun = "Rerun";
  const failed = job.state === "failed" || job.state === "lost";
  const message = endMessage(job);
  const choice = failed
    ? await vscode.window.showErrorMessage(message, openLog, rerun)
    : await vscode.window.showInformationMessage(message, openLog);
  if (choice === openLog) {
    await vscode.commands.executeCommand(Commands.openLog, job);
  } else if (choice === rerun) {
    await vscode.commands.executeCommand(Commands.rerunJob, job);
  }
}

async function notifyDrift(drift: DriftFound): Promise<void> {
  const report = drift.report;
  const found = report.drifts.length;
  const openReport = "Open Report";
  const check = "Check Again";
  const summary =
    `bgrun's periodic check found ${found} inconsistenc${found === 1 ? "y" : "ies"} between the job store, ` +
    `the record files and the logs under ${drift.logRoot}, and repaired ${report.repaired}.`;
  const actions = report.report_path ? [openReport, check] : [check];
  const choice =
    report.repaired === found
      ? await vscode.window.showInformationMessage(summary, ...actions)
      : await vscode.window.showWarningMessage(summary, ...actions);
  if (choice === openReport && report.report_path) {
    await vscode.window.showTextDocument(vscode.Uri.file(report.report_path));
  } else if (choice === check) {
    await vscode.commands.executeCommand(Commands.check);
  }
}

export function registerNotifications(jobs: JobCache, onDrift: vscode.Event<DriftFound>): vscode.Disposable {
  const ended = jobs.onDidEnd((job) => void notifyEnded(job));
  const drift = onDrift((found) => void notifyDrift(found));
  return vscode.Disposable.from(ended, drift);
}
