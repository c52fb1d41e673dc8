// zod compiles object parsers with `new Function` when it may; the page's Content-Security-Policy
// forbids it, and even zod's caught probe would be reported as a violation. Imported first by the
// run page, before the trajectory reader's schemas are built.
import { config } from 'zod';

config({ jitless: true });
