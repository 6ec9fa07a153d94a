// The `ftrain` executable of this install: launchers (`ftrain run`, `ftrain node`) and tools
// (chaos, bench) start node processes with it.

import { packagePath } from './package-root.ts';

export const FTRAIN_BIN = packagePath('bin/ftrain.js');
