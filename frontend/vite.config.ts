import { defineConfig } from "vite";
import preact from "@preact/preset-vite";

// The build lands inside the Python package, which serves it (steelyard.api.webapp); it is not
// committed. Assets get hashed names, so the server caches them for good.
export default defineConfig({
  plugins: [preact()],
  base: "/",
  build: {
    outDir: "../src/steelyard/web_dist",
    emptyOutDir: true,
    assetsDir: "assets",
  },
  test: {
    environment: "node",
  },
} as Parameters<typeof defineConfig>[0]);
