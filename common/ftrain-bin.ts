// The `ftrain` executable of this install: launchers (`ftrain run`, `ftrain node`) and tools
// (chaos, bench) start node processes with it.

import { fileURLToPath } from 'node:url';

export const FTRAIN_BIN = fileURLToPath(new URL('../bin/ftrain.js', import.meta.url));
