import { SsdError } from '../../core/errors.js';
import type { Command } from '../args.js';

// Placeholder until its issue lands: the command exists so that the dispatcher type-checks.
const command: Command = {
  name: 'stream',
  summary: 'stream',
  usage: 'Usage: ssd stream (not implemented yet)',
  async run() {
    throw new SsdError('not implemented yet');
  },
};
export default command;
