// The dial extension: highlighting comes from the grammar (package.json); this starts the dialc language
// server (`dialc lsp`, stdio) for every .dial file: diagnostics, hover, completion, go to definition,
// outline, formatting and rename. Settings: dial.server.command (default `dialc`), dial.server.args.
"use strict";

const vscode = require("vscode");
const { LanguageClient, TransportKind } = require("vscode-languageclient/node");

let client;

/** The server command from the settings: `dialc lsp` unless the user points at another dialc. */
function serverOptions(config) {
  const command = config.get("server.command") || "dialc";
  const args = config.get("server.args") || ["lsp"];
  return { command, args, transport: TransportKind.stdio };
}

function clientOptions() {
  return {
    documentSelector: [{ scheme: "file", language: "dial" }, { scheme: "untitled", language: "dial" }],
    synchronize: { fileEvents: vscode.workspace.createFileSystemWatcher("**/*.dial") },
  };
}

async function activate(context) {
  const config = vscode.workspace.getConfiguration("dial");
  const server = serverOptions(config);
  client = new LanguageClient("dial", "dial language server", server, clientOptions());
  try {
    await client.start();
  } catch (error) {
    vscode.window.showErrorMessage(
      `dial: could not start \`${server.command} ${server.args.join(" ")}\` (${error.message || error}). ` +
        "Install dialc, or set dial.server.command to its path (e.g. .venv/bin/dialc).",
    );
  }
  context.subscriptions.push({ dispose: () => deactivate() });
}

function deactivate() {
  const running = client;
  client = undefined;
  return running ? running.stop() : undefined;
}

module.exports = { activate, deactivate, serverOptions, clientOptions };
