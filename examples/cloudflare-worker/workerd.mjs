// Runs workerd (the npm package's binary) on a config built by build.mjs.

import { spawn } from 'node:child_process';
import workerd from 'workerd';

/** The workerd binary the `workerd` npm package installed. */
export const workerdBin = () => workerd.default ?? workerd;

/**
 * Starts `workerd serve CONFIG`; `stdio` as for child_process.spawn. The caller owns
 * the process (kill it by its pid).
 */
export function startWorkerd(config, { stdio = 'inherit' } = {}) {
  return spawn(workerdBin(), ['serve', config], { stdio });
}
