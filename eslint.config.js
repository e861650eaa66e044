// ESLint (flat config): JavaScript's and typescript-eslint's recommended rules, without type
// information (the whole tree lints in seconds), and no formatting rules.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'test/.bundle/', '.data/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      // A leading underscore marks a binding kept on purpose (a rest sibling that drops a key, an unused loop variable).
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true },
      ],
      // Cases grouped under one comment share a body.
      'no-fallthrough': ['error', { allowEmptyCase: true }],
      // Terminal and log escaping match control characters on purpose.
      'no-control-regex': 'off',
      // Tests read parsed JSON and SDK internals loosely; the compiler's strict mode guards the rest.
      '@typescript-eslint/no-explicit-any': 'off',
      // Errors here carry the target and the operation in their message; adding `cause` everywhere is a change of its own.
      'preserve-caught-error': 'off',
      // `let x = 0` before a try that assigns it reads as the fallback; the compiler flags a real read-before-assign.
      'no-useless-assignment': 'off',
    },
  },
  { files: ['bin/**/*.js', 'scripts/**/*.js', '*.js'], languageOptions: { globals: globals.node } },
  { files: ['triggers/operators/console/**/*.js'], languageOptions: { globals: globals.browser } },
);
