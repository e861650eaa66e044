// Showing a URL without what it may carry in secret. Pure (no Node built-ins): workflow code uses it.

/**
 * A URL as it may be shown anywhere (a check's title, an error, a log line, a config error): scheme,
 * host and path only. User info and query strings carry credentials ("http://user:pw@host/health",
 * "?token=…"), fragments sometimes too. Text that is not a URL keeps only what precedes "?" or "#".
 */
export function safeUrl(raw: string): string {
  const text = String(raw);
  try {
    const url = new URL(text);
    const authority = url.host !== '' || text.slice(url.protocol.length).startsWith('//');
    return authority ? `${url.protocol}//${url.host}${url.pathname}` : `${url.protocol}${url.pathname}`;
  } catch {
    return text.split(/[?#]/)[0]!.replace(/\/\/[^/@\s]*@/, '//');
  }
}

/** Every URL inside a free text (an error message, a log line) reduced to safeUrl(). */
export function redactUrls(text: string): string {
  return text.replace(/\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>`]+/gi, (url) => safeUrl(url));
}
