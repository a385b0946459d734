console.log("rbee");
