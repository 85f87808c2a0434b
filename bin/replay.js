#!/usr/bin/env node
// The project's single CLI entry: `replay <command>` (from a shell: scripts/replay <command>, which picks the Node
// that scripts/setup installed). Plain JavaScript that any Node parses, so an old Node gets one sentence instead of
// ERR_UNKNOWN_FILE_EXTENSION; the TypeScript is loaded only once the version is known to strip its types.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  process.stderr.write(
    `replay needs Node 22.18 or newer to run its TypeScript, and this is Node ${process.versions.node}: run it as scripts/replay <command> (it uses the Node 24 that scripts/setup installs).\n`,
  );
  process.exit(1);
}
const { main } = await import('../src/cli/main.ts');
const code = await main(process.argv.slice(2));
// Exit now: a command has finished its own orderly shutdown, and idle keep-alive sockets of HTTP clients (S3,
// ClickHouse) must not keep the process around.
process.exit(code);
