// Runbook files written in a test, and what the loader says of them.
import { expect } from 'vitest';
import { parseRunbook, RunbookError } from '../../../config/runbookLoad.js';

/** A runbook file: the header, then the step lines given (line 5 is the first step line). */
export function runbook(...stepLines: string[]): string {
  return ['name: probe', 'description: a runbook under test', 'appliesTo: [container]', 'steps:', ...stepLines, ''].join('\n');
}

/** The loader's problems with a file named bad.yaml; none when it loads. */
export function problemsOf(text: string): string[] {
  try {
    parseRunbook(text, 'bad.yaml');
  } catch (err) {
    if (err instanceof RunbookError) return err.problems;
    throw err;
  }
  return [];
}

/** The one problem of a file, which must start with `bad.yaml:line: step "id":`. */
export function onlyProblem(text: string, line: number, step: string): string {
  const problems = problemsOf(text);
  expect(problems, problems.join('\n')).toHaveLength(1);
  expect(problems[0]!.startsWith(`bad.yaml:${line}: step "${step}":`), problems[0]).toBe(true);
  return problems[0]!;
}
