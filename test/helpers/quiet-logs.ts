/**
 * Loaded by mocha before any test (.mocharc.json): in-process servers of unit tests log nothing,
 * so the test report stays readable. Servers started as child processes get their own env.
 */
process.env.INFERFLUX_LOG_LEVEL ??= 'silent';
