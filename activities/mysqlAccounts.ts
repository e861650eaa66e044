// What a MySQL/MariaDB server's refusal of the engine's account means, by its error number, and
// what to do about it: said the same by every activity that logs in (queries, the dump program).

/**
 * The server is up and answering, but will not serve the engine's account: what is wrong and what
 * to do about it, or undefined for any other error. By number, not name: mysql2 names the codes
 * after MySQL's list, and MariaDB numbers some of them differently.
 */
export function accountRefused(errno: unknown, said: string, user: string | undefined): string | undefined {
  const account = user ? `account '${user}'` : "the engine's account";
  switch (errno) {
    case 1820: // ER_MUST_CHANGE_PASSWORD: MariaDB by default lets the login in, then refuses every statement
    case 1862: // ER_MUST_CHANGE_PASSWORD_LOGIN: MySQL, or MariaDB with disconnect_on_expired_password
      return `the password of ${account} has expired (${said}): set a new one on the server (ALTER USER ... IDENTIFIED BY) and in the target's config`;
    case 3118: // ER_ACCOUNT_HAS_BEEN_LOCKED (MySQL)
    case 4151: // ER_ACCOUNT_HAS_BEEN_LOCKED (MariaDB); MySQL's 4151 is a LOAD DATA error the engine never causes
      return `${account} is locked (${said}): unlock it on the server (ALTER USER ... ACCOUNT UNLOCK)`;
    case 3955: // MySQL: locked for a time after FAILED_LOGIN_ATTEMPTS wrong passwords
      return `${account} is locked after too many failed logins (${said}): check the target's password, then unlock it on the server (ALTER USER ... ACCOUNT UNLOCK)`;
    case 1130: // ER_HOST_NOT_PRIVILEGED: no account at all for the host the engine connects from
      return `the server accepts no account from the engine's host (${said}): grant ${account} access from that host`;
    case 1129: // ER_HOST_IS_BLOCKED
      return `the server has blocked the engine's host after too many connection errors (${said}): unblock it with FLUSH HOSTS (mariadb-admin flush-hosts)`;
    // The account's own limits, not the server's: other accounts still get in, so the server is
    // not down, and a restart is never the cure. A polling verification asks again on its own.
    case 1203: // ER_TOO_MANY_USER_CONNECTIONS: the global max_user_connections
    case 1226: // ER_USER_LIMIT_REACHED: the account's MAX_USER_CONNECTIONS, MAX_QUERIES_PER_HOUR, ...
      return `the server is up but refuses ${account} more: it has reached a limit of its own (${said}); give the engine an account of its own, or raise the limit`;
    default:
      return undefined;
  }
}
