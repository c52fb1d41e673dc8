/**
 * Rewrites a JavaScript cell so its top-level declarations outlive the cell and top-level `await`
 * works, the way Node's own REPL does (`lib/internal/repl/await.js`):
 *
 * - the cell is wrapped in an async function, called with the global object as `this`;
 * - top-level `const`/`let`/`class` and every `var` outside a function become assignments to
 *   globals (a sloppy-mode assignment to an undeclared name creates a global property), so a later
 *   cell can read them and may declare the same name again;
 * - top-level function declarations stay where they are (hoisted inside the wrapper) and are copied
 *   to the global object first thing;
 * - the last expression statement becomes the wrapper's return value (boxed in an array, so a
 *   promise is reported as a promise, not awaited).
 *
 * The rewrite only inserts or replaces text on the line it concerns (the wrapper's opening goes on
 * line 1, its closing on a new last line), so line numbers of stack traces and errors are the
 * cell's own; `mapPosition` undoes the column shifts too.
 */
import { parse, type Node, type Pattern, type Program, type VariableDeclaration } from 'acorn';

export interface TransformedCell {
  /** Script source to compile; evaluates to a promise of `[lastValue]`, or of `undefined` when the cell does not end with an expression. */
  readonly code: string;
  /**
   * Maps a 1-based line and column of `code` back to the cell source; `undefined` for positions
   * inside the wrapper's closing line (they are not the cell's code).
   */
  mapPosition(line: number, column: number): { line: number; column: number } | undefined;
}

/** The cell does not parse. `line` is 1-based, `column` 1-based, both in the cell's own source. */
export class CellSyntaxError extends Error {
  override name = 'SyntaxError';
  constructor(
    message: string,
    readonly line: number,
    readonly column: number,
  ) {
    super(message);
  }
}

interface Edit {
  readonly start: number;
  readonly end: number;
  readonly text: string;
}

const WRAPPER_OPEN = '(async function () {;';

/**
 * Name of the hidden global function (installed by the cell runner) that makes each name it is
 * given a writable data property of the global object.
 */
export const DECLARE_GLOBALS = '__rlm_declare_globals__';
const WRAPPER_CLOSE = '\n}).call(this)';

export function transformCell(source: string): TransformedCell {
  let program: Program;
  try {
    program = parse(source, {
      ecmaVersion: 'latest',
      sourceType: 'script',
      allowAwaitOutsideFunction: true,
      locations: false,
    });
  } catch (error) {
    throw toCellSyntaxError(error, source);
  }

  const edits: Edit[] = [];
  const hoistedVars = new Set<string>();
  const hoistedFunctions: string[] = [];
  const tools: RewriteTools = {
    replace: (start, end, text) => edits.push({ start, end, text }),
    insert: (at, text) => edits.push({ start: at, end: at, text }),
    hoistedVars,
    source,
  };

  const body = program.body;
  const last = body.at(-1);
  for (const statement of body) {
    switch (statement.type) {
      case 'VariableDeclaration':
        if (statement.kind === 'var' || statement.kind === 'let' || statement.kind === 'const') {
          rewriteDeclaration(statement, 'statement', tools);
        }
        break;
      case 'FunctionDeclaration':
        hoistedFunctions.push(statement.id.name);
        break;
      case 'ClassDeclaration':
        if (statement.id) {
          hoistedVars.add(statement.id.name);
          tools.insert(statement.start, `void (${statement.id.name} = `);
          tools.insert(statement.end, ');');
        }
        break;
      default:
        rewriteNestedVars(statement, tools);
        if (statement === last && statement.type === 'ExpressionStatement') {
          tools.insert(statement.expression.start, 'return [(');
          tools.insert(statement.expression.end, ')]');
        }
    }
  }

  let prefix = WRAPPER_OPEN;
  // Declared names must be plain writable globals before the cell assigns them: a sloppy-mode
  // assignment to a getter-only global such as Node's `crypto` would silently do nothing.
  const declared = [...new Set([...hoistedVars, ...hoistedFunctions])];
  if (declared.length > 0) prefix += `this.${DECLARE_GLOBALS}(${JSON.stringify(declared)});`;
  for (const name of hoistedFunctions) prefix += `this.${name} = ${name};`;

  // Stable sort: edits at one offset keep the order they were made in.
  const sorted = edits
    .map((edit, index) => ({ edit, index }))
    .sort((a, b) => a.edit.start - b.edit.start || a.index - b.index)
    .map(({ edit }) => edit);

  let code = prefix;
  let cursor = 0;
  for (const edit of sorted) {
    code += source.slice(cursor, edit.start) + edit.text;
    cursor = edit.end;
  }
  code += source.slice(cursor);
  const bodyEnd = code.length;
  code += WRAPPER_CLOSE;

  const allEdits: Edit[] = [{ start: 0, end: 0, text: prefix }, ...sorted];
  const sourceLines = lineStarts(source);
  const codeLines = lineStarts(code);

  return {
    code,
    mapPosition(line, column) {
      const lineStart = codeLines[line - 1];
      if (lineStart === undefined) return undefined;
      const generated = lineStart + column - 1;
      if (generated >= bodyEnd) return undefined;
      const original = toOriginalOffset(allEdits, generated);
      return offsetToPosition(sourceLines, original);
    },
  };
}

interface RewriteTools {
  replace(start: number, end: number, text: string): void;
  insert(at: number, text: string): void;
  hoistedVars: Set<string>;
  source: string;
}

/**
 * Turns a declaration into assignments: `const {a, b} = o;` → `void ({a, b} = o);`,
 * `let x = 1, y;` → `void ((x = 1), (y = undefined));`. In a `for` head only the keyword goes:
 * `for (var i = 0; …)` → `for (i = 0; …)`.
 */
function rewriteDeclaration(node: VariableDeclaration, position: 'statement' | 'for-head', tools: RewriteTools): void {
  const keywordEnd = node.start + node.kind.length;
  // Every name is declared on the global object up front (see DECLARE_GLOBALS), let/const included.
  for (const declarator of node.declarations) collectNames(declarator.id, tools.hoistedVars);
  if (position === 'for-head') {
    tools.replace(node.start, keywordEnd, '');
    return;
  }
  const several = node.declarations.length > 1;
  tools.replace(node.start, keywordEnd, several ? 'void (' : 'void');
  for (const declarator of node.declarations) {
    tools.insert(declarator.start, '(');
    // A `var` without initialiser keeps the value it had (it is only hoisted); `let x;` is undefined.
    tools.insert(declarator.end, declarator.init || node.kind === 'var' ? ')' : ' = undefined)');
  }
  const lastDeclarator = node.declarations.at(-1);
  if (several && lastDeclarator) tools.insert(lastDeclarator.end, ')');
  // Always end the statement: `let x\n[1].map(f)` relied on ASI after the declaration, which a
  // parenthesised expression would no longer get.
  if (tools.source[node.end - 1] !== ';') tools.insert(node.end, ';');
}

/** Rewrites `var` declarations below a top-level statement, not entering functions or static blocks. */
function rewriteNestedVars(root: Node, tools: RewriteTools): void {
  const visit = (node: Node, parent: Node | undefined, key: string | undefined): void => {
    switch (node.type) {
      case 'FunctionDeclaration':
      case 'FunctionExpression':
      case 'ArrowFunctionExpression':
      case 'StaticBlock':
        return;
      case 'VariableDeclaration': {
        const declaration = node as VariableDeclaration;
        if (declaration.kind === 'var') {
          const inForHead =
            (parent?.type === 'ForStatement' && key === 'init') || ((parent?.type === 'ForInStatement' || parent?.type === 'ForOfStatement') && key === 'left');
          rewriteDeclaration(declaration, inForHead ? 'for-head' : 'statement', tools);
        }
        break;
      }
    }
    for (const [childKey, value] of Object.entries(node)) {
      if (Array.isArray(value)) {
        for (const item of value) if (isNode(item)) visit(item, node, childKey);
      } else if (isNode(value)) {
        visit(value, node, childKey);
      }
    }
  };
  visit(root, undefined, undefined);
}

function isNode(value: unknown): value is Node {
  return typeof value === 'object' && value !== null && typeof (value as { type?: unknown }).type === 'string';
}

function collectNames(pattern: Pattern, into: Set<string>): void {
  switch (pattern.type) {
    case 'Identifier':
      into.add(pattern.name);
      break;
    case 'ObjectPattern':
      for (const property of pattern.properties) {
        collectNames(property.type === 'RestElement' ? property.argument : property.value, into);
      }
      break;
    case 'ArrayPattern':
      for (const element of pattern.elements) if (element) collectNames(element, into);
      break;
    case 'AssignmentPattern':
      collectNames(pattern.left, into);
      break;
    case 'RestElement':
      collectNames(pattern.argument, into);
      break;
    default:
      break;
  }
}

function toOriginalOffset(edits: readonly Edit[], generated: number): number {
  let delta = 0;
  for (const edit of edits) {
    const generatedStart = edit.start + delta;
    if (generated < generatedStart) break;
    if (generated < generatedStart + edit.text.length) return edit.start;
    delta += edit.text.length - (edit.end - edit.start);
  }
  return generated - delta;
}

function lineStarts(text: string): number[] {
  const starts = [0];
  for (let index = text.indexOf('\n'); index !== -1; index = text.indexOf('\n', index + 1)) starts.push(index + 1);
  return starts;
}

function offsetToPosition(starts: readonly number[], offset: number): { line: number; column: number } {
  let low = 0;
  let high = starts.length - 1;
  while (low < high) {
    const middle = (low + high + 1) >> 1;
    if ((starts[middle] ?? 0) <= offset) low = middle;
    else high = middle - 1;
  }
  return { line: low + 1, column: offset - (starts[low] ?? 0) + 1 };
}

function toCellSyntaxError(error: unknown, source: string): CellSyntaxError {
  if (error instanceof SyntaxError) {
    const { pos, loc } = error as SyntaxError & { pos?: number; loc?: { line: number; column: number } };
    const message = error.message.replace(/\s*\(\d+:\d+\)$/, '');
    if (loc) return new CellSyntaxError(message, loc.line, loc.column + 1);
    if (typeof pos === 'number') {
      const { line, column } = offsetToPosition(lineStarts(source), pos);
      return new CellSyntaxError(message, line, column);
    }
    return new CellSyntaxError(message, 1, 1);
  }
  return new CellSyntaxError(String(error), 1, 1);
}
