/**
 * Optimal linear assignment (Hungarian method with potentials, the shortest-augmenting-path form
 * that Jonker-Volgenant refine): O(n^2 m) for an n x m cost matrix with n <= m. Used by the tracker
 * (core/tracking/tracker.ts) and by the MOT metrics (core/tracking/mot-metrics.ts), both of which
 * need the optimum, not a greedy pairing: greedy IoU matching swaps identities where boxes cross.
 */

/**
 * Minimum-cost assignment of every row (rows <= cols) or every column (cols < rows) of a dense,
 * finite, row-major cost matrix. Returns rowToCol (-1 for a row left over when rows > cols).
 */
export function solveAssignment(costRC: ArrayLike<number>, rows: number, cols: number): Int32Array {
  const rowToCol = new Int32Array(rows).fill(-1);
  if (rows === 0 || cols === 0) return rowToCol;
  if (costRC.length < rows * cols) throw new RangeError(`solveAssignment: ${costRC.length} costs for ${rows} x ${cols}`);
  if (rows <= cols) {
    const colOfRow = hungarian((i, j) => costRC[i * cols + j]!, rows, cols);
    rowToCol.set(colOfRow);
  } else {
    // Transposed: columns become the smaller side.
    const rowOfCol = hungarian((i, j) => costRC[j * cols + i]!, cols, rows);
    for (let j = 0; j < cols; j++) rowToCol[rowOfCol[j]!] = j;
  }
  return rowToCol;
}

/** n <= m; returns, for each of the n rows, its column. */
function hungarian(cost: (i: number, j: number) => number, n: number, m: number): Int32Array {
  // 1-based arrays as in the classic formulation; p[j] = row matched to column j (0 = none).
  const u = new Float64Array(n + 1);
  const v = new Float64Array(m + 1);
  const p = new Int32Array(m + 1);
  const way = new Int32Array(m + 1);
  const minv = new Float64Array(m + 1);
  const used = new Uint8Array(m + 1);
  for (let i = 1; i <= n; i++) {
    p[0] = i;
    let j0 = 0;
    minv.fill(Infinity);
    used.fill(0);
    do {
      used[j0] = 1;
      const i0 = p[j0]!;
      let delta = Infinity;
      let j1 = 0;
      for (let j = 1; j <= m; j++) {
        if (used[j]) continue;
        const cur = cost(i0 - 1, j - 1) - u[i0]! - v[j]!;
        if (cur < minv[j]!) {
          minv[j] = cur;
          way[j] = j0;
        }
        if (minv[j]! < delta) {
          delta = minv[j]!;
          j1 = j;
        }
      }
      for (let j = 0; j <= m; j++) {
        if (used[j]) {
          u[p[j]!] += delta;
          v[j] -= delta;
        } else {
          minv[j] -= delta;
        }
      }
      j0 = j1;
    } while (p[j0] !== 0);
    do {
      const j1 = way[j0]!;
      p[j0] = p[j1]!;
      j0 = j1;
    } while (j0 !== 0);
  }
  const colOfRow = new Int32Array(n);
  for (let j = 1; j <= m; j++) if (p[j]! > 0) colOfRow[p[j]! - 1] = j - 1;
  return colOfRow;
}

/**
 * Assignment where a pair is only allowed when its cost is below `limit`, and a row or column may
 * stay unmatched: minimises sum(matched cost) + limit/2 per unmatched row and per unmatched column,
 * which is what lap.lapjv(extend_cost=True, cost_limit=limit) solves in ByteTrack. Equivalently it
 * maximises the sum of (limit - cost) over matched pairs. The bipartite graph of allowed pairs is
 * split into connected components first: tracked objects rarely overlap more than a few others, so
 * 100 objects cost 100 tiny problems instead of one 100 x 100 one. Returns rowToCol (-1 = unmatched).
 */
export function assignWithLimit(costRC: ArrayLike<number>, rows: number, cols: number, limit: number): Int32Array {
  const rowToCol = new Int32Array(rows).fill(-1);
  if (rows === 0 || cols === 0) return rowToCol;
  const allowed = (i: number, j: number) => costRC[i * cols + j]! < limit;
  // Components by breadth-first search over rows and columns (columns offset by `rows`).
  const comp = new Int32Array(rows + cols).fill(-1);
  const queue = new Int32Array(rows + cols);
  let nComp = 0;
  for (let start = 0; start < rows; start++) {
    if (comp[start] !== -1) continue;
    let head = 0;
    let tail = 0;
    queue[tail++] = start;
    comp[start] = nComp;
    const compRows: number[] = [];
    const compCols: number[] = [];
    while (head < tail) {
      const node = queue[head++]!;
      if (node < rows) {
        compRows.push(node);
        for (let j = 0; j < cols; j++) {
          if (comp[rows + j] === -1 && allowed(node, j)) {
            comp[rows + j] = nComp;
            queue[tail++] = rows + j;
          }
        }
      } else {
        const j = node - rows;
        compCols.push(j);
        for (let i = 0; i < rows; i++) {
          if (comp[i] === -1 && allowed(i, j)) {
            comp[i] = nComp;
            queue[tail++] = i;
          }
        }
      }
    }
    nComp++;
    if (compCols.length === 0) continue;
    if (compRows.length === 1 && compCols.length === 1) {
      rowToCol[compRows[0]!] = compCols[0]!;
      continue;
    }
    // Gain-as-negative-cost: an allowed pair costs (cost - limit) < 0, a forbidden one 0 (the same
    // as leaving both unmatched), so a full rectangular assignment holds the best partial matching.
    const r = compRows.length;
    const c = compCols.length;
    const sub = new Float64Array(r * c);
    for (let a = 0; a < r; a++) {
      for (let b = 0; b < c; b++) {
        const x = costRC[compRows[a]! * cols + compCols[b]!]!;
        sub[a * c + b] = x < limit ? x - limit : 0;
      }
    }
    const sol = solveAssignment(sub, r, c);
    for (let a = 0; a < r; a++) {
      const b = sol[a]!;
      if (b >= 0 && sub[a * c + b]! < 0) rowToCol[compRows[a]!] = compCols[b]!;
    }
  }
  return rowToCol;
}

/**
 * Assignment over the finite entries of a cost matrix (NaN or Infinity = not pairable): the most
 * pairs first, then the least total cost among those, as py-motmetrics' linear_sum_assignment does
 * (it replaces the missing edges by a cost larger than any sum of real ones). Returns rowToCol.
 */
export function assignFinite(costRC: ArrayLike<number>, rows: number, cols: number): Int32Array {
  const rowToCol = new Int32Array(rows).fill(-1);
  if (rows === 0 || cols === 0) return rowToCol;
  let sum = 0;
  let any = false;
  for (let k = 0; k < rows * cols; k++) {
    const x = costRC[k]!;
    if (Number.isFinite(x)) {
      sum += Math.abs(x);
      any = true;
    }
  }
  if (!any) return rowToCol;
  const big = 2 * sum + 1;
  const filled = new Float64Array(rows * cols);
  for (let k = 0; k < rows * cols; k++) {
    const x = costRC[k]!;
    filled[k] = Number.isFinite(x) ? x : big;
  }
  const sol = solveAssignment(filled, rows, cols);
  for (let i = 0; i < rows; i++) {
    const j = sol[i]!;
    if (j >= 0 && Number.isFinite(costRC[i * cols + j]!)) rowToCol[i] = j;
  }
  return rowToCol;
}
