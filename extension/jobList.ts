// "Show Background Jobs": a quick pick of every known job that updates while it is open.

import * as vscode from "vscode";
import { Commands } from "./constants";
import { JobActions } from "./jobActions";
import { jobRow, sortJobs } from "./jobFormat";
import { JobCache } from "./jobs";
import { Job } from "./protocol";

interface JobItem extends vscode.QuickPickItem {
  job?: Job;
}

// Elapsed times in the list are redrawn this often while it is open.
const TICK_MS = 1000;
const OPEN_LOG_BUTTON: vscode.QuickInputButton = { iconPath: new vscode.ThemeIcon("output"), tooltip: "Open Log" };

function items(jobs: JobCache): JobItem[] {
  const now = Date.now();
  const sorted = sortJobs(jobs.all());
  if (sorted.length === 0) {
    return [{ label: "$(play) Run in Background…", description: "no background jobs yet" }];
  }
  return sorted.map((job) => {
    const row = jobRow(job, now);
    return { label: `$(${row.icon}) ${row.label}`, description: row.description, detail: row.detail, job, buttons: [OPEN_LOG_BUTTON] };
  });
}

export async function showJobList(jobs: JobCache, actions: JobActions): Promise<void> {
  const quickPick = vscode.window.createQuickPick<JobItem>();
  quickPick.title = "bgrun: Background Jobs";
  quickPick.placeholder = "Choose a job to open its log, stop it, rerun it or copy its command";
  quickPick.matchOnDescription = true;
  quickPick.matchOnDetail = true;
  const redraw = () => {
    const active = quickPick.activeItems[0]?.job;
    quickPick.items = items(jobs);
    if (active !== undefined) {
      const same = quickPick.items.find((item) => item.job?.id === active.id && item.job.log_root === active.log_root);
      if (same !== undefined) {
        quickPick.activeItems = [same];
      }
    }
  };
  redraw();
  const timer = setInterval(redraw, TICK_MS);
  const subscriptions = [
    jobs.onDidChange(redraw),
    quickPick.onDidTriggerItemButton((event) => {
      if (event.item.job !== undefined) {
        quickPick.hide();
        void actions.openLog(event.item.job);
      }
    }),
  ];
  const chosen = await new Promise<JobItem | undefined>((resolve) => {
    subscriptions.push(
      quickPick.onDidAccept(() => {
        resolve(quickPick.selectedItems[0]);
        quickPick.hide();
      }),
      quickPick.onDidHide(() => resolve(undefined)),
    );
    quickPick.show();
  });
  clearInterval(timer);
  for (const subscription of subscriptions) {
    subscription.dispose();
  }
  quickPick.dispose();
  if (chosen === undefined) {
    return;
  }
  if (chosen.job === undefined) {
    await vscode.commands.executeCommand(Commands.run);
    return;
  }
  await actions.offerActions(chosen.job);
}
