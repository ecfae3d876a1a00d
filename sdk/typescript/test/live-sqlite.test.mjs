import { liveSuite } from "./live-suite.mjs";
import { scratchDir, sqliteDatabase } from "./harness.mjs";

liveSuite("SQLite", async () => ({ database: await sqliteDatabase(scratchDir()) }));
