#!/usr/bin/env node
// The project's single CLI entry: `replay <command>`. Node >= 22.18 runs this TypeScript directly.
import { main } from '../src/cli/main.ts';

const code = await main(process.argv.slice(2));
// Exit now: a command has finished its own orderly shutdown, and idle keep-alive sockets of HTTP clients (S3,
// ClickHouse) must not keep the process around.
process.exit(code);
