// Certificates a test makes for itself with openssl (argument arrays, never a shell string): a CA
// that is not the stack's, and clients it signs, for proving the cluster refuses them. And the forms
// a private key could take in a log line, for proving none of them leaks.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });

export interface IssuedClient {
  ca: string;
  cert: string;
  key: string;
}

/**
 * A CA of the test's own and one client certificate it signs, with exactly the subject and usage
 * the stack gives its clients (CN=remediation-engine, clientAuth): only the signature differs.
 */
export function foreignClient(cn = 'remediation-engine'): IssuedClient {
  const dir = mkdtempSync(join(tmpdir(), 'remediation-foreign-ca-'));
  const [ca, caKey, cert, key] = ['ca.pem', 'ca-key.pem', 'client.pem', 'client-key.pem'].map((f) => join(dir, f)) as [
    string,
    string,
    string,
    string,
  ];
  for (const k of [caKey, key]) openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', k);
  openssl(
    'req',
    '-x509',
    '-new',
    '-config',
    '/dev/null',
    '-key',
    caKey,
    '-subj',
    '/O=remediation stack/CN=remediation stack Temporal CA',
    '-days',
    '2',
    '-addext',
    'basicConstraints=critical,CA:TRUE,pathlen:0',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
    '-out',
    ca,
  );
  openssl(
    'req',
    '-new',
    '-config',
    '/dev/null',
    '-key',
    key,
    '-subj',
    `/O=remediation stack/CN=${cn}`,
    '-CA',
    ca,
    '-CAkey',
    caKey,
    '-days',
    '2',
    '-addext',
    'basicConstraints=critical,CA:FALSE',
    '-addext',
    'keyUsage=critical,digitalSignature',
    '-addext',
    'extendedKeyUsage=clientAuth',
    '-out',
    cert,
  );
  return { ca, cert, key };
}

/**
 * The shapes a PEM private key takes when something logs it: the PEM text and each base64 line of
 * its body, a Buffer's inspection (hex bytes), and a Buffer's JSON (decimal bytes).
 */
export function keyLeakForms(keyFile: string): string[] {
  const pem = readFileSync(keyFile, 'utf8').trim();
  const body = pem.split('\n').filter((l) => l && !l.startsWith('-----'));
  const der = Buffer.from(body.join(''), 'base64');
  const bytes = Buffer.from(pem).subarray(0, 24);
  const scalar = der.indexOf(Buffer.from([0x02, 0x01, 0x01, 0x04, 0x20]));
  return [
    'PRIVATE KEY',
    body.join(''),
    ...body.filter((l) => l.length >= 16),
    // The secret scalar itself in hex (an EC key's `02 01 01 04 20` then 32 bytes), however it was framed.
    ...(scalar >= 0 ? [der.subarray(scalar + 5, scalar + 37).toString('hex')] : []),
    [...bytes].map((b) => b.toString(16).padStart(2, '0')).join(' '),
    [...bytes].join(','),
  ];
}

/** Which of the key's forms occur in the text (none, when nothing leaked). */
export function leakedKeyForms(text: string, keyFiles: string[]): string[] {
  return keyFiles.flatMap((f) =>
    keyLeakForms(f)
      .filter((form) => text.includes(form))
      .map((form) => `${f}: ${form.slice(0, 24)}…`),
  );
}
