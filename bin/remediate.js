#!/usr/bin/env node
// The operator CLI runs from the TypeScript sources (no build step): tsx compiles them on load.
import { register } from 'tsx/esm/api';

register();
const { main } = await import(new URL('../triggers/cli/cli.ts', import.meta.url).href);
process.exitCode = await main(process.argv);
