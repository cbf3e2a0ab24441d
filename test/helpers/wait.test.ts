import { describe, expect, it } from 'vitest';
import { waitFor } from './wait.js';

describe('waitFor', () => {
  it('returns the first value that is not undefined, null or false (sync or async checks)', async () => {
    let n = 0;
    expect(await waitFor(() => (++n >= 3 ? n : false), 'three polls', { everyMs: 1 })).toBe(3);
    expect(await waitFor(async () => 0, 'a zero')).toBe(0);
    expect(await waitFor(() => '', 'an empty string')).toBe('');
  });

  it('fails naming what never happened, with the detail, once the bound has passed', async () => {
    await expect(waitFor(() => undefined, 'the moon', { timeoutMs: 20, everyMs: 5, detail: () => 'stderr: nothing' }))
      .rejects.toThrow(/^timed out waiting for the moon \(0\.02 s\):\nstderr: nothing$/);
  });

  it('a check that throws ends the wait with that error', async () => {
    await expect(waitFor(() => { throw new Error('server exited'); }, 'a server')).rejects.toThrow('server exited');
  });
});
