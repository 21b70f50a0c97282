// Filled in by the page's author.
