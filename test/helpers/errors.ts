import { httpStatusOf } from '../../src/http/problem.js';
import { AppError } from '../../src/platform/errors.js';

/**
 * The AppError a call rejects with, with the HTTP status it answers with (`status`, mapped as the
 * API's error handler maps it); fails the test when it resolves or throws something else.
 */
export async function appError(p: Promise<unknown>): Promise<AppError & { status: number }> {
  try {
    await p;
  } catch (err) {
    if (err instanceof AppError) return Object.assign(err, { status: httpStatusOf(err) });
    throw err;
  }
  throw new Error('expected an AppError');
}
