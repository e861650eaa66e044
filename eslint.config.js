// ESLint (flat config): JavaScript's and typescript-eslint's recommended rules, no formatting rules;
// with type information only for the engine's own code, for one rule: a promise nobody awaits (in a
// workflow, an activity or a timer that nothing waits for). Measured on 2 cores: about 5 s for the
// tree without types, 15-26 s with this rule on the sources; on the tests too, 23-53 s and 1.9 GB.
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
        {
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          destructuredArrayIgnorePattern: '^_',
          caughtErrors: 'none',
          ignoreRestSiblings: true,
        },
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
  {
    files: ['config/**/*.ts', 'activities/**/*.ts', 'workflows/**/*.ts', 'triggers/**/*.ts', 'worker/**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: { '@typescript-eslint/no-floating-promises': 'error' },
  },
  {
    files: ['bin/**/*.{js,mjs,cjs}', 'scripts/**/*.{js,mjs,cjs}', 'bench/**/*.{js,mjs,cjs}', '*.{js,mjs,cjs}'],
    languageOptions: { globals: globals.node },
  },
  // CommonJS: require() is its import, and a top-level name is the module's own, not a global's.
  {
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs' },
    rules: { '@typescript-eslint/no-require-imports': 'off', 'no-redeclare': ['error', { builtinGlobals: false }] },
  },
  { files: ['triggers/operators/console/**/*.js'], languageOptions: { globals: globals.browser } },
);
