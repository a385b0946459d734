import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { NotFoundError } from "@rbee/contract";
import { type HttpContext, StaticFiles } from "@rbee/server-kit";

const require = createRequire(import.meta.url);

/**
 * The page may load only its own scripts and styles and talk only to this queen; no other site may
 * frame it. (Styles set from script through the DOM, as the memory bars' widths are, are allowed.)
 */
export const DASHBOARD_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/** The built page of @rbee/dashboard (`dist/web`), or undefined when the package is not installed. */
export function dashboardDir(): string | undefined {
  try {
    return join(dirname(require.resolve("@rbee/dashboard/package.json")), "dist", "web");
  } catch {
    return undefined;
  }
}

function wantsHtml(ctx: HttpContext): boolean {
  return (ctx.header("accept") ?? "").includes("text/html");
}

/**
 * The web dashboard at `/`: static files built at install time. A browser (Accept: text/html) gets
 * the page; an API client asking for `/` still gets the queen's one line of JSON.
 */
export class Dashboard {
  readonly files: StaticFiles | undefined;

  constructor(dir: string | undefined = dashboardDir()) {
    this.files =
      dir === undefined
        ? undefined
        : StaticFiles.load(dir, {
            immutable: (path) => path.startsWith("/assets/"),
            headers: { "content-security-policy": DASHBOARD_CSP, "referrer-policy": "no-referrer" },
          });
  }

  index(ctx: HttpContext, json: () => unknown): void {
    if (this.files && wantsHtml(ctx) && this.files.serve(ctx, "/index.html")) return;
    ctx.send(200, json());
  }

  asset(ctx: HttpContext): void {
    const name = ctx.params.file ?? "";
    if (this.files?.serve(ctx, `/assets/${name}`)) return;
    throw new NotFoundError(
      this.files
        ? `no dashboard asset '${name}'`
        : "the dashboard is not built: run `npm run build` in the rbee checkout",
      "route_not_found",
    );
  }
}
