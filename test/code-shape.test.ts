// The tree stays readable: no source file over 500 lines, no function over 120, outside tests.
// A factory that returns an object of methods counts by its longest method and by the code
// around the returned object, not as one long function. Measured with TypeScript's own parser.
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import ts from 'typescript'
import { describe, expect, it } from 'vitest'

const MAX_FILE_LINES = 500
const MAX_FUNCTION_LINES = 120

/** Tracked TypeScript and JavaScript sources that are not tests, test helpers or fixtures. */
function sourceFiles(): string[] {
  const tracked = execFileSync('git', ['ls-files', '*.ts', '*.mts', '*.mjs', '*.js'], {
    encoding: 'utf8',
  })
  return tracked
    .split('\n')
    .filter(Boolean)
    .filter((file) => !/(\.test\.ts|\.d\.mts|\.contract\.ts|test-fakes\.ts)$/.test(file))
    .filter((file) => !file.startsWith('test/'))
}

interface LongFunction {
  file: string
  line: number
  name: string
  lines: number
}

const linesOf = (source: ts.SourceFile, node: ts.Node, end = node.getEnd()) =>
  source.getLineAndCharacterOfPosition(end).line -
  source.getLineAndCharacterOfPosition(node.getStart(source)).line +
  1

/** The object literal a function body ends by returning, when it holds methods. */
function returnedMethods(body: ts.Block): ts.ObjectLiteralExpression | undefined {
  const last = body.statements.at(-1)
  if (!last || !ts.isReturnStatement(last) || !last.expression) return undefined
  const value = last.expression
  if (!ts.isObjectLiteralExpression(value)) return undefined
  const isMethod = (p: ts.ObjectLiteralElementLike) =>
    ts.isMethodDeclaration(p) ||
    ts.isShorthandPropertyAssignment(p) ||
    (ts.isPropertyAssignment(p) &&
      (ts.isFunctionExpression(p.initializer) || ts.isArrowFunction(p.initializer)))
  return value.properties.some(isMethod) ? value : undefined
}

/** The functions a block declares at its top level (`function f` or `const f = () => …`). */
function innerFunctions(body: ts.Block): ts.Node[] {
  return body.statements.flatMap((statement): ts.Node[] => {
    if (ts.isFunctionDeclaration(statement)) return [statement]
    if (!ts.isVariableStatement(statement)) return []
    return statement.declarationList.declarations.filter(
      (d) =>
        d.initializer &&
        (ts.isArrowFunction(d.initializer) || ts.isFunctionExpression(d.initializer)),
    )
  })
}

/** Functions over the limit in one file, each measured as the rule says. */
function longFunctions(file: string, text: string, limit: number): LongFunction[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true)
  const found: LongFunction[] = []
  const visit = (node: ts.Node) => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body) {
      const body = node.body as ts.Node
      const methods = ts.isBlock(body) ? returnedMethods(body) : undefined
      // A factory counts by its methods (the returned object's and the functions it declares
      // for them, each visited and measured on its own) and by the code around them.
      const own =
        methods && ts.isBlock(body)
          ? [methods, ...innerFunctions(body)].reduce(
              (n, part) => n - linesOf(source, part),
              linesOf(source, node),
            )
          : linesOf(source, node)
      if (own > limit) {
        const named = (node as { name?: ts.Node }).name
        const name =
          named?.getText(source) ??
          (ts.isVariableDeclaration(node.parent) ? node.parent.name.getText(source) : '(anonymous)')
        const line = source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1
        found.push({ file, line, name, lines: own })
      }
    }
    ts.forEachChild(node, visit)
  }
  visit(source)
  return found
}

describe('code shape', () => {
  const files = sourceFiles().map((file) => ({ file, text: readFileSync(file, 'utf8') }))

  it(`no source file outside tests is over ${MAX_FILE_LINES} lines`, () => {
    const long = files
      .map(({ file, text }) => ({ file, lines: text.split('\n').length }))
      .filter(({ lines }) => lines > MAX_FILE_LINES)
    expect(long).toEqual([])
  })

  it(`no function outside tests is over ${MAX_FUNCTION_LINES} lines (a factory by its longest method)`, () => {
    const long = files.flatMap(({ file, text }) => longFunctions(file, text, MAX_FUNCTION_LINES))
    expect(long).toEqual([])
  })

  it('measures a factory by its methods and a plain function whole (the rule itself)', () => {
    const body = (n: number) => Array.from({ length: n }, (_, i) => `  const a${i} = ${i}`)
    const plain = ['function plain() {', ...body(130), '}'].join('\n')
    const factory = [
      'function factory() {',
      ...body(10),
      '  return {',
      '    small() {',
      ...body(100),
      '    },',
      '    other() {',
      ...body(100),
      '    },',
      '  }',
      '}',
    ].join('\n')
    const longMethod = factory.replace('    small() {', ['    small() {', ...body(30)].join('\n'))
    expect(longFunctions('plain.ts', plain, 120).map((f) => f.name)).toEqual(['plain'])
    expect(longFunctions('factory.ts', factory, 120)).toEqual([])
    expect(longFunctions('long.ts', longMethod, 120).map((f) => f.name)).toEqual(['small'])
    const shorthand = [
      'function factory() {',
      ...body(10),
      '  function recommend() {',
      ...body(100),
      '  }',
      '  const refresh = () => {',
      ...body(100),
      '  }',
      '  return { recommend, refresh }',
      '}',
    ].join('\n')
    expect(longFunctions('shorthand.ts', shorthand, 120)).toEqual([])
    const noMethods = shorthand.replace('return { recommend, refresh }', 'return 1')
    expect(longFunctions('none.ts', noMethods, 120).map((f) => f.name)).toEqual(['factory'])
  })
})
