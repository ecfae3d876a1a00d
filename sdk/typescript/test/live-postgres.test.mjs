import { describe } from "node:test";
import { liveSuite } from "./live-suite.mjs";
import { postgresDatabase } from "./harness.mjs";

// Outside CI, no PostgreSQL is a skip with its reason; with CI=true it fails.
const postgres = await postgresDatabase();
if (postgres.skip) describe("the client against a live server on PostgreSQL", { skip: postgres.skip }, () => {});
else liveSuite("PostgreSQL", async () => postgres);
