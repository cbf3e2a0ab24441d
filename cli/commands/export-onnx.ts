import { SsdError } from '../../core/errors.js';
import type { Command } from '../args.js';

// Placeholder until its issue lands: the command exists so that the dispatcher type-checks.
const command: Command = {
  name: 'export-onnx',
  summary: 'export-onnx',
  usage: 'Usage: ssd export-onnx (not implemented yet)',
  async run() {
    throw new SsdError('not implemented yet');
  },
};
export default command;
