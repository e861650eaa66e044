// The `email` channel's configuration: an SMTP server and the addresses a page goes from and to.
// Addresses end up in SMTP commands and mail headers, so they are plain addresses only (no display
// name, comment, quoting or line break) and bounded; a password is only ever sent over TLS.
import { z } from 'zod';

/**
 * local@domain, as RFC 5321 allows it unquoted: at most 64 characters before the "@", a domain of
 * letter-digit-hyphen labels, 254 in all. Nothing that could end an SMTP command or a header line.
 */
export const mailAddressPattern =
  /^(?=.{3,254}$)[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,64}(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,64})*@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

export const mailAddress = z
  .string()
  .regex(mailAddressPattern, 'expected a plain mail address such as oncall@example.com (no display name)');

/** A host name, an IPv4 address, or an IPv6 address (without brackets). */
const smtpHost = z
  .string()
  .max(253)
  .regex(
    /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*|[0-9A-Fa-f:.]{2,45})$/,
    'expected a host name or an IP address',
  );

/** What goes before every subject ("[remediation]"): one short line. */
const subjectPrefix = z
  .string()
  .max(64)
  .regex(/^[^\u0000-\u001f\u007f-\u009f\u2028\u2029]*$/, 'expected one line without control characters');

/**
 * The channel, built from the schema's own secret reference and timeout (passed in: config/schema.ts
 * imports this module, so this one cannot import it back).
 */
export function emailChannelSchema<S extends z.ZodTypeAny, T extends z.ZodTypeAny>(secretRef: S, timeout: T) {
  return z
    .object({
      type: z.literal('email'),
      smtp: z
        .object({
          host: smtpHost,
          port: z.number().int().min(1).max(65_535),
          /** Implicit TLS from the first byte (port 465); false: plain SMTP upgraded as `starttls` says. */
          secure: z.boolean().default(false),
          /** With secure: false. required: STARTTLS or nothing is sent; opportunistic: when offered; never. */
          starttls: z.enum(['required', 'opportunistic', 'never']).default('required'),
          user: z
            .string()
            .min(1)
            .max(256)
            .regex(/^[^\u0000-\u001f\u007f]+$/, 'expected no control characters')
            .optional(),
          password: secretRef.optional(),
          /** PEM of the CA(s) the server's certificate must chain to (`{ file: path }`); unset: the system's. */
          ca: secretRef.optional(),
          /** Bound of the whole delivery of one page (connect, TLS, login, send): the notify activity has 30 s. */
          timeout,
        })
        .strict()
        .refine((s) => (s.user === undefined) === (s.password === undefined), { message: 'set both user and password, or neither' })
        .refine((s) => s.password === undefined || s.secure || s.starttls === 'required', {
          message: 'a password is only sent over TLS: set secure: true or starttls: required',
          path: ['starttls'],
        }),
      from: mailAddress,
      to: z
        .array(mailAddress)
        .min(1)
        .max(50)
        .refine((to) => new Set(to.map((a) => a.toLowerCase())).size === to.length, 'an address is listed twice'),
      subjectPrefix: subjectPrefix.default('[remediation]'),
    })
    .strict();
}
