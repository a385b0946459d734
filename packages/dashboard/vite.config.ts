import { defineConfig } from "vite";

// The page is static files the queen serves at "/": hashed names under assets/ (cached for good),
// index.html (never cached). Built by `npm run build` at install time, shipped in dist/web.
export default defineConfig({
  base: "/",
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    outDir: "dist/web",
    emptyOutDir: true,
    target: "es2022",
    assetsDir: "assets",
    modulePreload: { polyfill: false },
    reportCompressedSize: false,
  },
});
