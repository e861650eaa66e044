// A regular expression written in a config or runbook file, checked when the file loads.
import { z } from 'zod';

/** A JavaScript regular expression written in a file, checked when it loads. */
export const regexText = z
  .string()
  .max(200)
  .superRefine((p, ctx) => {
    try {
      new RegExp(p);
    } catch (err) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `not a regular expression: ${(err as Error).message}` });
    }
  });
