/**
 * The plane geometry of zones and lines, in source pixels (x right, y down): which point of a box
 * counts as the object's position (its anchor), point in polygon, distance to a polygon's edges, and
 * which side of a directed line a point is on.
 */

/** Where on its box an object is placed; bottom-center is where a person or a car touches the ground. */
export const ANCHORS = ['top-left', 'top-center', 'top-right', 'center-left', 'center', 'center-right', 'bottom-left', 'bottom-center', 'bottom-right'] as const;
export type Anchor = (typeof ANCHORS)[number];

/** The anchor as fractions of the box's width and height from its top-left corner. */
export function anchorFractions(a: Anchor): { fx: number; fy: number } {
  const [v, h] = a === 'center' ? ['center', 'center'] : a.split('-') as [string, string];
  return { fx: h === 'left' ? 0 : h === 'right' ? 1 : 0.5, fy: v === 'top' ? 0 : v === 'bottom' ? 1 : 0.5 };
}

/**
 * Even-odd rule on the polygon `pointsXY` (x0, y0, x1, y1, ...): true when (x, y) is inside. A point
 * exactly on an edge may go either way; callers keep a margin around edges (see distanceToEdges).
 */
export function pointInPolygon(pointsXY: ArrayLike<number>, x: number, y: number): boolean {
  const n = pointsXY.length / 2;
  let inside = false;
  for (let i = 0, j = n - 1; i < n; j = i++) {
    const xi = pointsXY[2 * i]!, yi = pointsXY[2 * i + 1]!;
    const xj = pointsXY[2 * j]!, yj = pointsXY[2 * j + 1]!;
    // Edges that straddle the horizontal through y (half-open, so a vertex is counted once).
    if ((yi > y) !== (yj > y)) {
      const xCross = xi + ((y - yi) * (xj - xi)) / (yj - yi);
      if (x < xCross) inside = !inside;
    }
  }
  return inside;
}

/** Distance from (x, y) to the segment (ax, ay)-(bx, by). */
export function distanceToSegment(ax: number, ay: number, bx: number, by: number, x: number, y: number): number {
  const dx = bx - ax, dy = by - ay;
  const len2 = dx * dx + dy * dy;
  const t = len2 === 0 ? 0 : Math.max(0, Math.min(1, ((x - ax) * dx + (y - ay) * dy) / len2));
  return Math.hypot(x - (ax + t * dx), y - (ay + t * dy));
}

/** Distance from (x, y) to the nearest edge of the closed polygon `pointsXY`. */
export function distanceToEdges(pointsXY: ArrayLike<number>, x: number, y: number): number {
  const n = pointsXY.length / 2;
  let best = Infinity;
  for (let i = 0, j = n - 1; i < n; j = i++) {
    best = Math.min(best, distanceToSegment(pointsXY[2 * j]!, pointsXY[2 * j + 1]!, pointsXY[2 * i]!, pointsXY[2 * i + 1]!, x, y));
  }
  return best;
}

/**
 * Signed distance of (x, y) from the infinite line through a -> b: positive on the side a walker going
 * from a to b has on the right hand as seen on the screen (y down), i.e. the "in" side of a directed
 * line. With a = left and b = right on a horizontal line, positive = below the line.
 */
export function signedDistance(ax: number, ay: number, bx: number, by: number, x: number, y: number): number {
  const dx = bx - ax, dy = by - ay;
  return (dx * (y - ay) - dy * (x - ax)) / Math.hypot(dx, dy);
}

/** Orientation of the triangle p, q, r: >0 counter-clockwise in y-up terms, 0 collinear. */
function orient(px: number, py: number, qx: number, qy: number, rx: number, ry: number): number {
  return (qx - px) * (ry - py) - (qy - py) * (rx - px);
}

function onSegment(px: number, py: number, qx: number, qy: number, rx: number, ry: number): boolean {
  return Math.min(px, qx) <= rx && rx <= Math.max(px, qx) && Math.min(py, qy) <= ry && ry <= Math.max(py, qy);
}

/** Whether the closed segments p1-p2 and q1-q2 share a point (endpoints and touching included). */
export function segmentsIntersect(p1x: number, p1y: number, p2x: number, p2y: number, q1x: number, q1y: number, q2x: number, q2y: number): boolean {
  const d1 = orient(q1x, q1y, q2x, q2y, p1x, p1y);
  const d2 = orient(q1x, q1y, q2x, q2y, p2x, p2y);
  const d3 = orient(p1x, p1y, p2x, p2y, q1x, q1y);
  const d4 = orient(p1x, p1y, p2x, p2y, q2x, q2y);
  if (((d1 > 0 && d2 < 0) || (d1 < 0 && d2 > 0)) && ((d3 > 0 && d4 < 0) || (d3 < 0 && d4 > 0))) return true;
  if (d1 === 0 && onSegment(q1x, q1y, q2x, q2y, p1x, p1y)) return true;
  if (d2 === 0 && onSegment(q1x, q1y, q2x, q2y, p2x, p2y)) return true;
  if (d3 === 0 && onSegment(p1x, p1y, p2x, p2y, q1x, q1y)) return true;
  if (d4 === 0 && onSegment(p1x, p1y, p2x, p2y, q2x, q2y)) return true;
  return false;
}

/** Twice the signed area of a polygon (shoelace); 0 for a degenerate one. */
export function polygonArea2(pointsXY: ArrayLike<number>): number {
  const n = pointsXY.length / 2;
  let a = 0;
  for (let i = 0, j = n - 1; i < n; j = i++) a += pointsXY[2 * j]! * pointsXY[2 * i + 1]! - pointsXY[2 * i]! * pointsXY[2 * j + 1]!;
  return a;
}

/** The first pair of non-adjacent edges that intersect (edge k runs from point k to point k+1), or undefined. */
export function selfIntersection(pointsXY: ArrayLike<number>): [number, number] | undefined {
  const n = pointsXY.length / 2;
  const p = (k: number) => [pointsXY[2 * (k % n)]!, pointsXY[2 * (k % n) + 1]!] as const;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      // Adjacent edges share a point by construction.
      if (j === i + 1 || (i === 0 && j === n - 1)) continue;
      const [a1, a2] = [p(i), p(i + 1)];
      const [b1, b2] = [p(j), p(j + 1)];
      if (segmentsIntersect(a1[0], a1[1], a2[0], a2[1], b1[0], b1[1], b2[0], b2[1])) return [i, j];
    }
  }
  return undefined;
}
