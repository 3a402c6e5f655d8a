/**
 * The "Ask Neurectomy" command: asks the local Neurectomy service about the selected text and streams
 * the answer into the "Neurectomy" output panel. Cancelling the progress notification closes the
 * connection, which cancels the generation on the service (its model slot is freed).
 */

import * as vscode from "vscode";

import { NeurectomyError, streamGenerate } from "./client";

const DEFAULT_QUESTION = "Explain what this code does.";

export function activate(context: vscode.ExtensionContext): void {
  const channel = vscode.window.createOutputChannel("Neurectomy");
  context.subscriptions.push(
    channel,
    vscode.commands.registerCommand("neurectomy.ask", () => ask(channel)),
  );
}

export function deactivate(): void {
  // Nothing to release: each request ends with its command.
}

async function ask(channel: vscode.OutputChannel): Promise<void> {
  const editor = vscode.window.activeTextEditor;
  const selection = editor ? editor.document.getText(editor.selection) : "";
  if (!editor || selection.trim() === "") {
    void vscode.window.showInformationMessage("Neurectomy: select some text first.");
    return;
  }
  const question = await vscode.window.showInputBox({
    title: "Ask Neurectomy",
    prompt: "Your question about the selection",
    placeHolder: DEFAULT_QUESTION,
  });
  if (question === undefined) return; // dismissed
  const config = vscode.workspace.getConfiguration("neurectomy");
  const baseUrl = config.get<string>("baseUrl", "http://127.0.0.1:8420");
  const language = editor.document.languageId;
  const content = `${question.trim() || DEFAULT_QUESTION}\n\n\`\`\`${language}\n${selection}\n\`\`\``;

  channel.show(true);
  channel.appendLine(`> ${question.trim() || DEFAULT_QUESTION}`);
  await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: "Neurectomy is answering…", cancellable: true },
    async (_progress, token) => {
      const abort = new AbortController();
      const subscription = token.onCancellationRequested(() => abort.abort());
      try {
        const result = await streamGenerate(
          baseUrl,
          {
            messages: [{ role: "user", content }],
            max_tokens: config.get<number>("maxTokens", 512),
            temperature: config.get<number>("temperature", 0.2),
            timeout_s: config.get<number>("timeoutSeconds", 300),
          },
          { onToken: (text) => channel.append(text), signal: abort.signal },
        );
        const u = result.usage;
        channel.appendLine(
          `\n\n[${result.model}: ${u.prompt_tokens} prompt + ${u.completion_tokens} completion tokens, ` +
            `finish: ${result.finish_reason}]\n`,
        );
      } catch (err) {
        if (abort.signal.aborted) {
          channel.appendLine("\n\n[cancelled]\n");
          return;
        }
        const message =
          err instanceof NeurectomyError
            ? `${err.code}${err.field ? ` (${err.field})` : ""}: ${err.message}`
            : `cannot reach ${baseUrl}: ${err instanceof Error ? err.message : String(err)}`;
        channel.appendLine(`\n\n[error] ${message}\n`);
        void vscode.window.showErrorMessage(`Neurectomy: ${message}`);
      } finally {
        subscription.dispose();
      }
    },
  );
}
