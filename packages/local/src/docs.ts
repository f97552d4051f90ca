import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { Hono } from "hono";

const assets: Record<string, string> = {
  "swagger-ui.css": "text/css; charset=utf-8",
  "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
  "swagger-ui-standalone-preset.js": "text/javascript; charset=utf-8",
  "favicon-32x32.png": "image/png",
};

/** Interactive docs for every service at /docs, with Swagger UI served from node_modules (no CDN). */
export function mountDocs(app: Hono, services: { name: string; prefix: string }[]): void {
  const assetDir = dirname(createRequire(import.meta.url).resolve("swagger-ui-dist/package.json"));
  const urls = JSON.stringify(services.map((s) => ({ name: s.name, url: `${s.prefix}/openapi.json` })));
  const page = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Enclave API</title>
<link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png">
<link rel="stylesheet" href="/docs/assets/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/assets/swagger-ui-standalone-preset.js"></script>
<script>window.ui = SwaggerUIBundle({ urls: ${urls}, dom_id: "#swagger-ui", presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset], layout: "StandaloneLayout", validatorUrl: null });</script>
</body></html>`;
  // The browser asks for an icon either way; the page names one so that request is not a 404.
  // validatorUrl: null keeps Swagger UI from sending each document to swagger.io's validator.
  app.get("/docs", (c) => c.html(page));
  app.get("/docs/assets/:file", async (c) => {
    const file = c.req.param("file");
    const type = assets[file];
    if (!type) return c.json({ error: { code: "not_found", message: "No such asset." } }, 404);
    c.header("content-type", type);
    c.header("cache-control", "public, max-age=3600");
    return c.body(await readFile(join(assetDir, file)));
  });
}
