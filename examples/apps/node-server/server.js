// The port comes from hosting (PORT); `ms` is the one npm dependency, proving it was installed.
const http = require("http");
const ms = require("ms");

const port = Number(process.env.PORT || 8080);
http
  .createServer((req, res) => {
    res.writeHead(200, { "content-type": "text/plain" });
    res.end(`hello from node-server: 2 days are ${ms("2 days")} ms\n`);
  })
  .listen(port, () => console.log(`listening on ${port}`));
