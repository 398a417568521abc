document.querySelector("#title").dataset.built = "vite";
