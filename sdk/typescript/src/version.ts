/** The SDK's version, sent in the User-Agent header; kept equal to package.json's by the tests. */
export const VERSION = "0.1.0";
