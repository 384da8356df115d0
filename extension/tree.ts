// The "Background Jobs" tree view in the panel, with the job actions in its context menu and inline.

import * as vscode from "vscode";
import { Commands, JOBS_VIEW_ID } from "./constants";
import { STATE_COLORS, formatOutcome, jobRow, logFileName, sortJobs, stateLabel } from "./jobFormat";
import { JobCache } from "./jobs";
import { Job, isActive } from "./protocol";

// Elapsed times are redrawn this often while a job runs.
const TICK_MS = 1000;

/** Row of the tree. Commands get it as their argument and read `job`. */
export class JobTreeItem extends vscode.TreeItem {
  constructor(
    readonly job: Job,
    now: number,
  ) {
    const row = jobRow(job, now);
    super(row.label, vscode.TreeItemCollapsibleState.None);
    this.id = `${job.log_root}\u0000${job.id}`;
    this.description = row.description;
    const color = STATE_COLORS[job.state];
    this.iconPath = new vscode.ThemeIcon(row.icon, color ? new vscode.ThemeColor(color) : undefined);
    // Menus in package.json match "job.active.*" and "job.final.*".
    this.contextValue = `job.${isActive(job.state) ? "active" : "final"}.${job.state}`;
    this.tooltip = tooltipOf(job, row.description);
    this.command = { command: Commands.openLog, title: "Open Log", arguments: [job] };
    this.accessibilityInformation = { label: `${job.name}, job ${job.id}, ${stateLabel(job)}` };
  }
}

function tooltipOf(job: Job, description: string): vscode.MarkdownString {
  const markdown = new vscode.MarkdownString(undefined, true);
  markdown.appendMarkdown(`$(${jobRow(job, Date.now()).icon}) **${job.name}** ${description}\n\n`);
  markdown.appendCodeblock(job.command, "shellscript");
  markdown.appendMarkdown(`\n\nLog: `).appendText(logFileName(job));
  markdown.appendMarkdown(`\n\nWorking directory: `).appendText(job.cwd);
  if (job.state === "failed" || job.state === "lost") {
    markdown.appendMarkdown(`\n\nOutcome: `).appendText(`${formatOutcome(job)}${job.reason ? ` (${job.reason})` : ""}`);
  }
  return markdown;
}

export class JobTree implements vscode.TreeDataProvider<JobTreeItem>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  private readonly view: vscode.TreeView<JobTreeItem>;
  private readonly disposables: vscode.Disposable[] = [];
  private timer: NodeJS.Timeout | undefined;

  readonly onDidChangeTreeData = this.changed.event;

  constructor(private readonly jobs: JobCache) {
    this.view = vscode.window.createTreeView(JOBS_VIEW_ID, { treeDataProvider: this, showCollapseAll: false });
    this.disposables.push(this.view, this.changed, jobs.onDidChange(() => this.refresh()));
    this.refresh();
  }

  refresh(): void {
    const all = this.jobs.all();
    const running = all.filter((job) => job.state === "running").length;
    this.view.badge = running > 0 ? { value: running, tooltip: `${running} running` } : undefined;
    const active = all.some((job) => isActive(job.state));
    if (active && this.timer === undefined) {
      this.timer = setInterval(() => this.changed.fire(), TICK_MS);
    } else if (!active && this.timer !== undefined) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
    this.changed.fire();
  }

  getTreeItem(element: JobTreeItem): vscode.TreeItem {
    return element;
  }

  getChildren(element?: JobTreeItem): JobTreeItem[] {
    if (element !== undefined) {
      return [];
    }
    const now = Date.now();
    return sortJobs(this.jobs.all()).map((job) => new JobTreeItem(job, now));
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
