// The "bgrun" status bar item: running and queued counts, a spinning icon while a job runs, and a tooltip listing the jobs.

import * as vscode from "vscode";
import { Commands, STATUS_BAR_ID } from "./constants";
import { statusText } from "./jobFormat";
import { JobCache } from "./jobs";
import { Backend } from "./server";

// The tooltip shows elapsed times, so it is redrawn this often while a job is active.
const TICK_MS = 1000;

export class StatusBar implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;
  private readonly disposables: vscode.Disposable[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly backend: Backend,
    private readonly jobs: JobCache,
  ) {
    this.item = vscode.window.createStatusBarItem(STATUS_BAR_ID, vscode.StatusBarAlignment.Left, 50);
    this.item.name = "bgrun";
    this.disposables.push(
      this.item,
      jobs.onDidChange(() => this.update()),
      backend.onDidChangeStatus(() => this.update()),
    );
    this.update();
    this.item.show();
  }

  update(): void {
    const jobs = this.jobs.all();
    const { text, tooltip } = statusText(this.backend.status, jobs, Date.now());
    this.item.text = text;
    const markdown = new vscode.MarkdownString(tooltip, true);
    markdown.isTrusted = false;
    this.item.tooltip = markdown;
    this.item.accessibilityInformation = { label: text.replace(/\$\([^)]*\)\s*/g, ""), role: "button" };
    const stopped = this.backend.status === "stopped";
    this.item.command = stopped ? Commands.showBackendLog : Commands.showJobs;
    this.item.backgroundColor = stopped ? new vscode.ThemeColor("statusBarItem.errorBackground") : undefined;
    const active = jobs.some((job) => job.state === "running" || job.state === "scheduled");
    if (active && this.timer === undefined) {
      this.timer = setInterval(() => this.update(), TICK_MS);
    } else if (!active && this.timer !== undefined) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  dispose(): void {
    if (this.timer !== undefined) {
      clearInterval(this.timer);
    }
    for (const disposable of this.disposables) {
      disposable.dispose();
    }
  }
}
