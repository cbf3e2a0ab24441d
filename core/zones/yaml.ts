/**
 * A small YAML reader for zones files, so that core stays free of dependencies. It reads the subset
 * such a file needs, and refuses the rest with the line number instead of guessing:
 *
 * - block mappings (`key: value`) and block sequences (`- item`, also `- key: value` starting a
 *   mapping item, and a sequence at the same indent as its key), indented with spaces;
 * - flow sequences and mappings (`[[0, 0], [1, 0]]`, `{x: 1}`), which may run over several lines;
 * - scalars: numbers, `true`/`false`, `null`/`~`/nothing, plain, 'single' and "double" quoted strings
 *   (double quotes take \" \\ \n \t \uXXXX escapes);
 * - `#` comments (at the start of a line or after a space), a leading `---`.
 *
 * Not read (an error naming the line): anchors and aliases (`&a`, `*a`), tags (`!x`), block scalars
 * (`|`, `>`), complex keys (`? `), several documents, tabs in indentation.
 */

/** A YAML value as read here: what JSON.parse would give for the same data. */
export type YamlValue = null | boolean | number | string | YamlValue[] | { [key: string]: YamlValue };

/** A syntax error; `line` is 1-based. */
export class YamlSyntaxError extends Error {
  constructor(readonly line: number, readonly reason: string) {
    super(`line ${line}: ${reason}`);
    this.name = 'YamlSyntaxError';
  }
}

interface Line {
  /** 1-based line number in the file. */
  no: number;
  indent: number;
  text: string;
}

/** Strips a comment: `#` at the start or after whitespace, outside quotes. */
function stripComment(s: string, no: number): string {
  let quote: string | undefined;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (quote !== undefined) {
      if (c === '\\' && quote === '"') i++;
      else if (c === quote) {
        // '' inside single quotes is an escaped quote, not the end.
        if (quote === "'" && s[i + 1] === "'") i++;
        else quote = undefined;
      }
    } else if (c === '"' || c === "'") {
      // A quote only opens a string at the start of a scalar; "it's" in a plain scalar is text.
      const prev = i === 0 ? ' ' : s[i - 1]!;
      if (/[\s[{,:-]/.test(prev)) quote = c;
    } else if (c === '#' && (i === 0 || /\s/.test(s[i - 1]!))) {
      return s.slice(0, i).trimEnd();
    }
  }
  if (quote !== undefined) throw new YamlSyntaxError(no, `unterminated ${quote === '"' ? 'double' : 'single'}-quoted string`);
  return s.trimEnd();
}

function splitLines(text: string): Line[] {
  const out: Line[] = [];
  const raw = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  let sawDoc = false;
  raw.forEach((l, i) => {
    const no = i + 1;
    const ws = /^[ \t]*/.exec(l)![0];
    if (ws.includes('\t') && l.trim() !== '') throw new YamlSyntaxError(no, 'tab in indentation (indent with spaces)');
    const body = stripComment(l.slice(ws.length), no);
    if (body === '') return;
    if (body === '---' || body.startsWith('--- ')) {
      if (sawDoc || out.length > 0) throw new YamlSyntaxError(no, 'several YAML documents in one file are not supported');
      sawDoc = true;
      if (body.slice(3).trim() !== '') throw new YamlSyntaxError(no, 'content after "---" is not supported');
      return;
    }
    if (body === '...') throw new YamlSyntaxError(no, 'document end markers ("...") are not supported');
    out.push({ no, indent: ws.length, text: body });
  });
  return out;
}

/** Position of the `:` that ends a mapping key in `s` (followed by a space or the end), or -1. */
function keyColon(s: string): number {
  if (s.startsWith('"') || s.startsWith("'")) {
    const q = s[0]!;
    let i = 1;
    for (; i < s.length; i++) {
      if (s[i] === '\\' && q === '"') i++;
      else if (s[i] === q) {
        if (q === "'" && s[i + 1] === "'") i++;
        else break;
      }
    }
    const rest = s.slice(i + 1);
    return /^\s*:(\s|$)/.test(rest) ? i + 1 + rest.indexOf(':') : -1;
  }
  if (s.startsWith('[') || s.startsWith('{')) return -1;
  const m = /:(\s|$)/.exec(s);
  return m === null ? -1 : m.index;
}

function checkUnsupported(s: string, no: number): void {
  const c = s[0];
  if (c === '&' || c === '*') throw new YamlSyntaxError(no, 'anchors and aliases (&, *) are not supported');
  if (c === '!') throw new YamlSyntaxError(no, 'tags (!) are not supported');
  if (c === '|' || c === '>') throw new YamlSyntaxError(no, 'block scalars (| and >) are not supported');
  if (c === '?' && (s.length === 1 || s[1] === ' ')) throw new YamlSyntaxError(no, 'complex keys (?) are not supported');
  if (c === '@' || c === '`') throw new YamlSyntaxError(no, `a plain value cannot start with "${c}" (quote it)`);
}

/** A plain (unquoted) scalar: null, booleans and numbers as YAML 1.2's core schema, else a string. */
function plainScalar(s: string): YamlValue {
  if (s === '' || s === '~' || s === 'null' || s === 'Null' || s === 'NULL') return null;
  if (s === 'true' || s === 'True' || s === 'TRUE') return true;
  if (s === 'false' || s === 'False' || s === 'FALSE') return false;
  if (/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s)) return Number(s);
  return s;
}

function unquote(s: string, no: number): string {
  const q = s[0]!;
  const body = s.slice(1, -1);
  if (q === "'") return body.replace(/''/g, "'");
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c !== '\\') {
      out += c;
      continue;
    }
    const e = body[++i];
    const simple: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', n: '\n', t: '\t', r: '\r', '0': '\0', ' ': ' ' };
    if (e !== undefined && e in simple) out += simple[e];
    else if (e === 'u' && /^[0-9a-fA-F]{4}$/.test(body.slice(i + 1, i + 5))) {
      out += String.fromCharCode(parseInt(body.slice(i + 1, i + 5), 16));
      i += 4;
    } else throw new YamlSyntaxError(no, `unknown escape "\\${e ?? ''}" in a double-quoted string`);
  }
  return out;
}

/** A scalar or flow collection written on one logical line. */
function inlineValue(s: string, no: number): YamlValue {
  checkUnsupported(s, no);
  if (s.startsWith('[') || s.startsWith('{')) {
    const p = new FlowParser(s, no);
    const v = p.value();
    p.end();
    return v;
  }
  if (s.startsWith('"') || s.startsWith("'")) {
    const q = s[0]!;
    if (s.length < 2 || s[s.length - 1] !== q) throw new YamlSyntaxError(no, `text after a quoted string: ${s}`);
    return unquote(s, no);
  }
  if (/:(\s|$)/.test(s)) throw new YamlSyntaxError(no, `unexpected ": " in the value "${s}" (quote it, or put a nested mapping on its own lines)`);
  return plainScalar(s);
}

/** Flow collections: [a, b], {k: v}, nested, quoted strings inside. */
class FlowParser {
  private i = 0;
  constructor(private readonly s: string, private readonly no: number) {}

  private ws(): void {
    while (this.i < this.s.length && /\s/.test(this.s[this.i]!)) this.i++;
  }

  end(): void {
    this.ws();
    if (this.i < this.s.length) throw new YamlSyntaxError(this.no, `unexpected "${this.s.slice(this.i)}" after a flow collection`);
  }

  value(): YamlValue {
    this.ws();
    const c = this.s[this.i];
    if (c === '[') return this.seq();
    if (c === '{') return this.map();
    if (c === '"' || c === "'") return this.quoted();
    return this.plain();
  }

  private seq(): YamlValue[] {
    this.i++;
    const out: YamlValue[] = [];
    this.ws();
    if (this.s[this.i] === ']') {
      this.i++;
      return out;
    }
    for (;;) {
      out.push(this.value());
      this.ws();
      const c = this.s[this.i++];
      if (c === ']') return out;
      if (c !== ',') throw new YamlSyntaxError(this.no, c === undefined ? 'unclosed "["' : `expected "," or "]" in a flow sequence, got "${c}"`);
      this.ws();
      if (this.s[this.i] === ']') { this.i++; return out; }
    }
  }

  private map(): { [key: string]: YamlValue } {
    this.i++;
    const out: { [key: string]: YamlValue } = {};
    this.ws();
    if (this.s[this.i] === '}') {
      this.i++;
      return out;
    }
    for (;;) {
      this.ws();
      const k = this.s[this.i] === '"' || this.s[this.i] === "'" ? this.quoted() : this.plain(true);
      const key = String(k);
      this.ws();
      if (this.s[this.i] !== ':') throw new YamlSyntaxError(this.no, `expected ":" after the key "${key}" in a flow mapping`);
      this.i++;
      if (Object.prototype.hasOwnProperty.call(out, key)) throw new YamlSyntaxError(this.no, `duplicate key "${key}"`);
      out[key] = this.value();
      this.ws();
      const c = this.s[this.i++];
      if (c === '}') return out;
      if (c !== ',') throw new YamlSyntaxError(this.no, c === undefined ? 'unclosed "{"' : `expected "," or "}" in a flow mapping, got "${c}"`);
    }
  }

  private quoted(): string {
    const q = this.s[this.i]!;
    let j = this.i + 1;
    for (; j < this.s.length; j++) {
      if (this.s[j] === '\\' && q === '"') j++;
      else if (this.s[j] === q) {
        if (q === "'" && this.s[j + 1] === "'") j++;
        else break;
      }
    }
    if (j >= this.s.length) throw new YamlSyntaxError(this.no, 'unterminated quoted string');
    const v = unquote(this.s.slice(this.i, j + 1), this.no);
    this.i = j + 1;
    return v;
  }

  private plain(isKey = false): YamlValue {
    const start = this.i;
    while (this.i < this.s.length) {
      const c = this.s[this.i]!;
      if (c === ',' || c === ']' || c === '}' || c === '[' || c === '{') break;
      if (isKey && c === ':') break;
      if (!isKey && c === ':' && /\s/.test(this.s[this.i + 1] ?? ' ')) break;
      this.i++;
    }
    const text = this.s.slice(start, this.i).trim();
    if (text !== '') checkUnsupported(text, this.no);
    if (text === '' && !isKey) {
      const c = this.s[this.i];
      throw new YamlSyntaxError(this.no, c === undefined ? 'unexpected end inside a flow collection' : `unexpected "${c}" in a flow collection`);
    }
    return isKey ? text : plainScalar(text);
  }
}

/** Bracket depth change of a flow text, outside quotes. */
function flowDepth(s: string): number {
  let d = 0;
  let quote: string | undefined;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (quote !== undefined) {
      if (c === '\\' && quote === '"') i++;
      else if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '[' || c === '{') d++;
    else if (c === ']' || c === '}') d--;
  }
  return d;
}

class BlockParser {
  private pos = 0;
  constructor(private readonly lines: Line[]) {}

  parseDocument(): YamlValue {
    if (this.lines.length === 0) return null;
    const first = this.lines[0]!;
    const v = this.block(first.indent);
    if (this.pos < this.lines.length) {
      const l = this.lines[this.pos]!;
      throw new YamlSyntaxError(l.no, `unexpected indentation or content: "${l.text}"`);
    }
    return v;
  }

  /** The node whose first line is the current one, at exactly `indent`. */
  private block(indent: number): YamlValue {
    const l = this.lines[this.pos]!;
    if (l.text === '-' || l.text.startsWith('- ')) return this.sequence(indent);
    if (keyColon(l.text) > 0) return this.mapping(indent);
    // A lone scalar or flow collection (possibly over several lines).
    return this.inlineAt(l.text, l.no);
  }

  /** Reads `text` (the current line's value part) as a flow value, joining lines while brackets are open. */
  private inlineAt(text: string, no: number): YamlValue {
    this.pos++;
    let s = text;
    if (s.startsWith('[') || s.startsWith('{')) {
      while (flowDepth(s) > 0 && this.pos < this.lines.length) s += ` ${this.lines[this.pos++]!.text}`;
    }
    return inlineValue(s, no);
  }

  private sequence(indent: number): YamlValue[] {
    const out: YamlValue[] = [];
    while (this.pos < this.lines.length) {
      const l = this.lines[this.pos]!;
      if (l.indent < indent) break;
      if (l.indent > indent) throw new YamlSyntaxError(l.no, `unexpected indentation: "${l.text}"`);
      if (!(l.text === '-' || l.text.startsWith('- '))) break;
      const rest = l.text.slice(1).replace(/^ +/, '');
      if (rest === '') {
        this.pos++;
        const next = this.lines[this.pos];
        if (next !== undefined && next.indent > indent) out.push(this.block(next.indent));
        else out.push(null);
        continue;
      }
      // "- key: value" starts a mapping whose keys sit at the column of "key".
      const col = indent + (l.text.length - rest.length);
      if (rest.startsWith('- ') || rest === '-') {
        this.lines[this.pos] = { no: l.no, indent: col, text: rest };
        out.push(this.sequence(col));
      } else if (keyColon(rest) > 0) {
        this.lines[this.pos] = { no: l.no, indent: col, text: rest };
        out.push(this.mapping(col));
      } else {
        out.push(this.inlineAt(rest, l.no));
      }
    }
    return out;
  }

  private mapping(indent: number): { [key: string]: YamlValue } {
    const out: { [key: string]: YamlValue } = {};
    while (this.pos < this.lines.length) {
      const l = this.lines[this.pos]!;
      if (l.indent < indent) break;
      if (l.indent > indent) throw new YamlSyntaxError(l.no, `unexpected indentation: "${l.text}"`);
      if (l.text === '-' || l.text.startsWith('- ')) throw new YamlSyntaxError(l.no, 'a sequence item where a "key: value" was expected');
      const c = keyColon(l.text);
      if (c <= 0) throw new YamlSyntaxError(l.no, `expected "key: value", got "${l.text}"`);
      const rawKey = l.text.slice(0, c).trim();
      checkUnsupported(rawKey, l.no);
      const key = rawKey.startsWith('"') || rawKey.startsWith("'") ? unquote(rawKey, l.no) : rawKey;
      if (Object.prototype.hasOwnProperty.call(out, key)) throw new YamlSyntaxError(l.no, `duplicate key "${key}"`);
      const rest = l.text.slice(c + 1).trim();
      if (rest !== '') {
        out[key] = this.inlineAt(rest, l.no);
        continue;
      }
      this.pos++;
      const next = this.lines[this.pos];
      if (next !== undefined && next.indent > indent) out[key] = this.block(next.indent);
      // YAML lets a sequence under a key start at the key's own indent.
      else if (next !== undefined && next.indent === indent && (next.text === '-' || next.text.startsWith('- '))) out[key] = this.sequence(indent);
      else out[key] = null;
    }
    return out;
  }
}

/** Parses YAML text of the subset above; throws YamlSyntaxError with the line. */
export function parseYaml(text: string): YamlValue {
  return new BlockParser(splitLines(text)).parseDocument();
}
