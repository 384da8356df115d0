// The Python extension (ms-python.python), when installed: its selected interpreter and environment.
// It is optional, so this module declares the few API members it uses instead of depending on
// @vscode/python-extension, and every call tolerates a missing or older API.

import * as fs from "node:fs";
import * as path from "node:path";
import * as vscode from "vscode";
import { PYTHON_EXTENSION_ID } from "./constants";
import { traceInfo, traceWarn } from "./logging";

interface EnvironmentPath {
  readonly id: string;
  readonly path: string;
}

interface ResolvedEnvironment {
  readonly executable: { readonly uri: vscode.Uri | undefined };
  readonly environment: { readonly type: string; readonly folderUri: vscode.Uri } | undefined;
}

/** The members of the Python extension's API (2023.x and later) that bgrun uses. */
interface PythonApi {
  readonly ready?: Promise<void>;
  readonly environments?: {
    getActiveEnvironmentPath(resource?: vscode.Uri): EnvironmentPath;
    resolveEnvironment(environment: EnvironmentPath | string): Promise<ResolvedEnvironment | undefined>;
    readonly onDidChangeActiveEnvironmentPath: vscode.Event<unknown>;
  };
}

export interface SelectedPython {
  executable?: string;
  /** venv or conda prefix, only when it is one the engine can activate. */
  environment?: string;
}

const ACTIVATION_TIMEOUT_MS = 15_000;

function withTimeout<T>(promise: PromiseLike<T>, milliseconds: number): Promise<T | undefined> {
  return Promise.race([
    Promise.resolve(promise),
    new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), milliseconds)),
  ]);
}

/** Returns true when `prefix` is a venv (has pyvenv.cfg) or a conda environment (has conda-meta/). */
export function isActivatable(prefix: string): boolean {
  return fs.existsSync(path.join(prefix, "pyvenv.cfg")) || fs.existsSync(path.join(prefix, "conda-meta"));
}

export class PythonExtension implements vscode.Disposable {
  private api: PythonApi | undefined;
  private loading: Promise<PythonApi | undefined> | undefined;
  private readonly changed = new vscode.EventEmitter<void>();
  private subscription: vscode.Disposable | undefined;

  /** Fires when the user selects another interpreter in the Python extension. */
  readonly onDidChangeInterpreter = this.changed.event;

  isInstalled(): boolean {
    return vscode.extensions.getExtension(PYTHON_EXTENSION_ID) !== undefined;
  }

  /** Returns the interpreter and environment selected for `resource`, or {} when the extension is missing. */
  async selected(resource?: vscode.Uri): Promise<SelectedPython> {
    const api = await this.load();
    const environments = api?.environments;
    if (environments === undefined) {
      return {};
    }
    try {
      const active = environments.getActiveEnvironmentPath(resource);
      const resolved = await withTimeout(environments.resolveEnvironment(active), ACTIVATION_TIMEOUT_MS);
      const executable = resolved?.executable.uri?.fsPath ?? active.path;
      const prefix = resolved?.environment?.folderUri.fsPath;
      const environment = prefix !== undefined && isActivatable(prefix) ? prefix : undefined;
      return { executable: executable || undefined, environment };
    } catch (error) {
      traceWarn(`The Python extension did not report the selected interpreter: ${String(error)}`);
      return {};
    }
  }

  dispose(): void {
    this.subscription?.dispose();
    this.changed.dispose();
  }

  private load(): Promise<PythonApi | undefined> {
    if (this.api !== undefined) {
      return Promise.resolve(this.api);
    }
    this.loading ??= this.activate();
    return this.loading;
  }

  private async activate(): Promise<PythonApi | undefined> {
    const extension = vscode.extensions.getExtension<PythonApi>(PYTHON_EXTENSION_ID);
    if (extension === undefined) {
      return undefined;
    }
    try {
      const api = extension.isActive ? extension.exports : await withTimeout(extension.activate(), ACTIVATION_TIMEOUT_MS);
      if (api === undefined) {
        traceWarn(`The Python extension did not activate within ${ACTIVATION_TIMEOUT_MS / 1000} s; bgrun goes on without it`);
        this.loading = undefined;
        return undefined;
      }
      if (api.ready !== undefined) {
        await withTimeout(api.ready, ACTIVATION_TIMEOUT_MS);
      }
      this.api = api;
      this.subscription = api.environments?.onDidChangeActiveEnvironmentPath(() => this.changed.fire());
      traceInfo("Using the Python extension's selected interpreter");
      return api;
    } catch (error) {
      traceWarn(`The Python extension failed to activate: ${String(error)}; bgrun goes on without it`);
      this.loading = undefined;
      return undefined;
    }
  }
}
