// Entry point: loads every page module (each registers its routes), then starts the router.
import { start } from "./app.js";
import "./pages/overview.js";
import "./pages/clients.js";
import "./pages/rules.js";
import "./pages/integration.js";
import "./pages/tools.js";
import "./pages/admin.js";

start();
