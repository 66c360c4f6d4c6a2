import { AppError } from '../../src/platform/errors.js';

/** The AppError a call rejects with; fails the test when it resolves or throws something else. */
export async function appError(p: Promise<unknown>): Promise<AppError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof AppError) return err;
    throw err;
  }
  throw new Error('expected an AppError');
}
